"""Key rollover without a failure window: stage a next key, commit it, prune the old one.

A DANE sender may hold a TLSA RRset in its cache for up to one TTL after it last asked. So a
new key may go live only after its record has been served everywhere for long enough that no
cache can still hold an RRset without it (2 x TTL, RFC 7671 section 8.1, plus the negative
TTL when the owner had no TLSA at all), and an old key's record may go only once the server
presents the new key, again 2 x TTL later. The three steps are separate commands because the
waits are hours long in real zones and nothing may sleep inside a certbot hook:

- ``stage``: generate the next key, keep it private in the state directory, publish its
  selector-1 records beside the current ones;
- ``commit``: once the waits are over, have certbot issue a certificate for the staged key,
  publish, reload, and check the live server;
- ``prune``: remove the old key's records once it is safe (also done by every deploy).

Every deploy goes through :func:`deploy_plan`, which reconciles the state with the lineage
(a committed key is noticed whoever ran certbot) and adds the staged and retiring records.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from certbot_dane_tlsa.errors import CertificateError, CommandError, DaneError, SettingsError
from certbot_dane_tlsa.keygen import KeyShape, choose_shape, generate, shape_of, spki_sha256
from certbot_dane_tlsa.keystate import (
    CurrentKey,
    KeyInfo,
    KeyState,
    NextKey,
    RetiringKey,
    StateStore,
    utcnow,
)
from certbot_dane_tlsa.lineage import Lineage
from certbot_dane_tlsa.lite_dataclasses import dataclass, field
from certbot_dane_tlsa.policy import Target, desired_state
from certbot_dane_tlsa.records import TlsaRecord
from certbot_dane_tlsa.renewalconf import lineage_renewal_params
from certbot_dane_tlsa.rollover_timing import (
    commit_wait,
    may_prune,
    prune_ready_at,
    wait_text,
    when_text,
)
from certbot_dane_tlsa.settings import Nameserver, Settings, ZoneSettings
from certbot_dane_tlsa.tlsa import Material, derive, derive_from_public_key, spki_der

log = logging.getLogger(__name__)

NOT_READY_EXIT = 75  # EX_TEMPFAIL: "try again later", what a timer wants to see
CERTBOT_TIMEOUT = 600.0

DEFAULT_CERTBOT_DIRS = ("/etc/letsencrypt", "/var/lib/letsencrypt", "/var/log/letsencrypt")


class NotReadyError(DaneError):
    """The step is not safe yet; the message says how long to wait."""

    exit_code = NOT_READY_EXIT


# --- where things are ------------------------------------------------------------------------


@dataclass(frozen=True)
class CertbotDirs:
    config_dir: Path
    work_dir: Path
    logs_dir: Path

    def live_dir(self, name: str) -> Path:
        return self.config_dir / "live" / name


def state_store(settings: Settings, live_dir: Path) -> StateStore:
    """``<state_dir or config-dir/dane-tlsa>/<NAME>``; config dir = ``live_dir/../..``."""
    live = Path(os.path.abspath(live_dir))
    base = settings.state_dir or live.parent.parent / "dane-tlsa"
    return StateStore(Path(base) / live.name, live.name)


def reuse_key_setting(live_dir: Path) -> bool | None:
    """The lineage's ``reuse_key`` in renewal/NAME.conf (None: there is no such file)."""
    found = lineage_renewal_params(live_dir)
    if found is None:
        return None
    return found[0].get("reuse_key", "").strip().lower() == "true"


def key_age(lineage: Lineage, now: datetime) -> timedelta:
    """How long the lineage has had its key: the age of the archive file it really is.

    With reuse_key certbot links each new privkeyN.pem to the previous one, so the file at the
    end of the links was written when the key was made.
    """
    real = Path(os.path.realpath(lineage.privkey))
    mtime = datetime.fromtimestamp(real.stat().st_mtime, tz=now.tzinfo)
    return now - mtime


# --- records ---------------------------------------------------------------------------------


def key_info(spki: bytes, records: Iterable[TlsaRecord]) -> KeyInfo:
    """The state file's entry for the key with DER SubjectPublicKeyInfo ``spki``."""
    shape = shape_of(spki)
    return KeyInfo(
        spki_sha256(spki),
        shape.key_type,
        shape.key_size,
        shape.curve,
        sorted(r.to_text() for r in records),
    )


def current_info(settings: Settings, material: Material) -> KeyInfo:
    records = [derive(material, params) for params in settings.params]
    return key_info(material.leaf.spki, records)


def next_records(settings: Settings, spki: bytes) -> list[TlsaRecord]:
    """The records a key without a certificate can have: usage 3/1 with selector 1.

    ``spki`` is the key's DER SubjectPublicKeyInfo. Issuer records (usage 2/0) do not depend
    on our key, so they need nothing. Selector 0 records hash the certificate, which does not
    exist yet: warn, they will break at commit.
    """
    records: list[TlsaRecord] = []
    for params in settings.params:
        if params.usage not in (1, 3):
            continue
        if params.selector != 1:
            log.warning(
                "TLSA %s hashes the whole certificate, which does not exist before the commit: "
                "it cannot be published ahead, so senders that use it will fail for up to "
                "2 x TTL after the commit; use selector 1 (e.g. 3 1 1)",
                params,
            )
            continue
        records.append(derive_from_public_key(spki, params))
    return records


def parse_records(records: Iterable[str]) -> list[TlsaRecord]:
    return [TlsaRecord.from_text(text) for text in records]


def _targets(settings: Settings, material: Material, names: Sequence[str]) -> list[Target]:
    return list(desired_state(settings, material, names).targets)


def _primary(zone: ZoneSettings) -> Nameserver:
    return zone.server or zone.nameservers[0]


def observe_ttl(targets: Sequence[Target], fallback: int) -> int:
    """The largest TTL the primary gives the TLSA RRsets (``fallback`` when none is served)."""
    from certbot_dane_tlsa.rollover_dns import ask_tlsa

    ttl = 0
    for target in targets:
        with contextlib.suppress(DaneError):
            ttl = max(ttl, ask_tlsa(_primary(target.zone), target.owner).ttl)
    return ttl or fallback


def _served_everywhere(targets: Sequence[Target], wanted: frozenset[TlsaRecord]) -> str:
    """Empty when every authoritative server serves ``wanted`` at every owner; else why not."""
    from certbot_dane_tlsa.nsverify import authoritative_servers
    from certbot_dane_tlsa.rollover_dns import ask_tlsa

    for zone in {t.zone.origin: t.zone for t in targets}.values():
        servers = authoritative_servers(zone)
        for server in servers:
            for target in (t for t in targets if t.zone.origin == zone.origin):
                try:
                    answer = ask_tlsa(server, target.owner)
                except DaneError as exc:
                    return f"nameserver {server} did not answer for {target.owner}: {exc}"
                missing = wanted - answer.records
                if missing:
                    return f"nameserver {server} does not serve the next key at {target.owner}"
                if not answer.signed:
                    # An unsigned answer cannot be validated; only a zone that is not signed at
                    # all is exempt, and such a zone has no DANE.
                    return f"nameserver {server} serves {target.owner} TLSA without an RRSIG"
    return ""


def _resolver_serves(
    resolver: Nameserver, targets: Sequence[Target], wanted: frozenset[TlsaRecord]
) -> str:
    from certbot_dane_tlsa.rollover_dns import ask_tlsa

    for target in targets:
        try:
            answer = ask_tlsa(resolver, target.owner, recursive=True)
        except DaneError as exc:
            return f"resolver {resolver} did not answer for {target.owner}: {exc}"
        if not answer.authenticated:
            return f"resolver {resolver} does not validate {target.owner} TLSA (no AD bit)"
        if wanted - answer.records:
            return f"resolver {resolver} does not serve the next key at {target.owner} yet"
    return ""


def observe_next(
    settings: Settings, nxt: NextKey, targets: Sequence[Target], now: datetime
) -> list[str]:
    """Start, keep or reset the two clocks of a staged key; return what is not served yet."""
    wanted = frozenset(parse_records(nxt.key.records))
    problems: list[str] = []
    problem = _served_everywhere(targets, wanted)
    if problem:
        if nxt.served_since is not None:
            log.warning("%s: the wait for the next key starts again", problem)
        nxt.served_since = None
        problems.append(problem)
    elif nxt.served_since is None:
        nxt.served_since = now
    if settings.resolver is not None:
        problem = _resolver_serves(settings.resolver, targets, wanted)
        if problem:
            nxt.resolver_since = None
            problems.append(problem)
        elif nxt.resolver_since is None:
            nxt.resolver_since = now
    nxt.ttl = max(nxt.ttl, observe_ttl(targets, nxt.ttl))
    return problems


# --- the deploy plan -------------------------------------------------------------------------


@dataclass
class DeployPlan:
    """What a deploy adds for the rollover, and what it learns for the state file.

    Inactive (no state, no extra records) in replace mode; read-only in a dry run.
    """

    settings: Settings
    store: StateStore | None = None
    state: KeyState | None = None
    extra_records: list[TlsaRecord] = field(default_factory=list)
    pruned: list[RetiringKey] = field(default_factory=list)
    promoted: bool = False
    dry_run: bool = False

    @property
    def active(self) -> bool:
        return self.state is not None

    def published(self, *, verified: bool, added: Iterable[TlsaRecord], now: datetime) -> None:
        """After publishing: start the served clocks (or restart them for re-added records)."""
        if self.state is None or self.dry_run:
            return
        added_set = frozenset(added)
        nxt = self.state.next
        if nxt is not None and added_set & frozenset(parse_records(nxt.key.records)):
            nxt.served_since = None
            nxt.resolver_since = None
        if not verified:
            return
        current = self.state.current
        if current is not None and current.served_since is None:
            current.served_since = now
        if nxt is not None and nxt.served_since is None:
            nxt.served_since = now
            self.state.note(now, f"next key {nxt.key.describe()} served by every server")

    def finish(self, material: Material, names: Sequence[str], *, now: datetime) -> None:
        """After reloads: see the new key live (starts the prune clock), then save."""
        if self.state is None or self.store is None or self.dry_run:
            return
        waiting = [r for r in self.state.retiring if r.live_since is None]
        if waiting:
            if self.settings.live_check:
                if _presents_current(self.settings, material, names):
                    for old in waiting:
                        old.live_since = now
                    self.state.note(now, "live server presents the new key")
                else:
                    log.warning(
                        "the live server does not present the new key yet: the old key's "
                        "records stay until it does (run deploy or prune again later)"
                    )
            else:
                log.warning(
                    "live_check = false: assuming the server presents the new key from now on; "
                    "the old key's records go 2 x TTL later"
                )
                for old in waiting:
                    old.live_since = now
        self.store.save(self.state)
        if self.promoted:
            self.store.remove_key()


def _presents_current(
    settings: Settings, material: Material, names: Sequence[str], timeout: float = 30.0
) -> bool:
    """Does every live server present the lineage's key (not merely any published one)?"""
    from certbot_dane_tlsa.pipeline import live_check

    strict = desired_state(settings, material, names)
    try:
        live_check(settings, strict, timeout=timeout)
    except DaneError as exc:
        log.warning("%s", exc)
        return False
    return True


def _log_replace_risk(settings: Settings) -> None:
    softened = any(p.usage == 2 for p in settings.params)
    log.warning(
        "mode = replace: when a renewal brings a new key, its record replaces the old one while "
        "the new key goes live, so DANE senders that cached the old record fail (and defer "
        "mail) for up to 2 x TTL; %s",
        "the 2 x x issuer record softens this for senders that accept it"
        if softened
        else "add a '2 1 1' record (the issuer in the chain) to soften it, or use mode = rollover",
    )


@contextlib.contextmanager
def deploy_plan(
    settings: Settings,
    lineage: Lineage,
    material: Material,
    *,
    dry_run: bool,
    now: datetime | None = None,
) -> Iterator[DeployPlan]:
    """Reconcile the state with the lineage and say which records to add; hold the lock."""
    now = now or utcnow()
    plan = DeployPlan(settings, dry_run=dry_run)
    if settings.mode == "replace":
        _log_replace_risk(settings)
        yield plan
        return
    store = state_store(settings, lineage.live_dir)
    with contextlib.ExitStack() as stack:
        if dry_run:
            state = store.load() or KeyState(store.lineage)
        else:
            stack.enter_context(store.lock())
            state = store.load_or_new()
        plan.store, plan.state = store, state
        _reconcile(plan, state, current_info(settings, material), now)
        _choose_extra(plan, state, material, lineage.names(), now)
        yield plan


def _reconcile(plan: DeployPlan, state: KeyState, live: KeyInfo, now: datetime) -> None:
    nxt, current = state.next, state.current
    if nxt is not None and nxt.key.spki_sha256 == live.spki_sha256:
        if current is not None and current.key.spki_sha256 != live.spki_sha256:
            state.retiring.append(RetiringKey(current.key, now, max(nxt.ttl, 0)))
        state.current = CurrentKey(live, now, served_since=nxt.served_since)
        state.next = None
        plan.promoted = True
        state.note(now, f"the certificate now uses the staged key {live.describe()}")
        log.info("the staged next key %s is now the certificate's key", live.describe())
    elif current is None:
        state.current = CurrentKey(live, now)
        state.note(now, f"first seen key {live.describe()}")
    elif current.key.spki_sha256 != live.spki_sha256:
        if not current.key.same_shape(live):
            log.warning(
                "the certificate's key changed type or size: %s -> %s (a certbot default may "
                "have changed; set key_type/rsa_key_size/elliptic_curve in the renewal config)",
                current.key.describe(),
                live.describe(),
            )
        log.warning(
            "the certificate's key changed outside a rollover (%s -> %s): renewals must reuse "
            "the key (reuse_key = True); a new key goes through 'rollover stage' and 'commit'",
            current.key.describe(),
            live.describe(),
        )
        state.current = CurrentKey(live, now)
        state.note(now, f"key changed outside a rollover to {live.describe()}")
    else:
        current.key.records = live.records
    state.retiring = [r for r in state.retiring if r.key.spki_sha256 != live.spki_sha256]


def _choose_extra(
    plan: DeployPlan, state: KeyState, material: Material, names: Sequence[str], now: datetime
) -> None:
    extra: list[TlsaRecord] = []
    if state.next is not None:
        extra.extend(parse_records(state.next.key.records))
    due = [r for r in state.retiring if may_prune(r, now)]
    # Last look before the old records go: the server must present the current key.
    live_look = due and not plan.dry_run and plan.settings.live_check
    if live_look and not _presents_current(plan.settings, material, names):
        log.warning("keeping the old key's records: the live server does not present the key")
        due = []
    for old in state.retiring:
        if old in due:
            plan.pruned.append(old)
            log.info("pruning the records of the retired key %s", old.key.describe())
            state.note(now, f"pruned the records of {old.key.describe()}")
        else:
            extra.extend(parse_records(old.key.records))
    state.retiring = [r for r in state.retiring if r not in due]
    plan.extra_records = extra


# --- stage -----------------------------------------------------------------------------------


def _require_rollover(settings: Settings) -> None:
    if settings.mode != "rollover":
        raise SettingsError("mode = replace: rollover and prune need mode = rollover")


@dataclass
class StepResult:
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        log.info("%s", text)
        self.lines.append(text)


def stage(
    settings: Settings,
    live_dir: Path,
    *,
    out: TextIO,
    key_type: str | None = None,
    rsa_key_size: int | None = None,
    elliptic_curve: str | None = None,
    now: datetime | None = None,
) -> StepResult:
    """Generate and publish the next key (idempotent: an existing staged key is re-published)."""
    from certbot_dane_tlsa.pipeline import deploy

    _require_rollover(settings)
    result = StepResult()
    lineage = Lineage.from_dir(live_dir)
    material = lineage.material()
    names = lineage.names()
    targets = _targets(settings, material, names)
    store = state_store(settings, lineage.live_dir)
    now = now or utcnow()
    with store.lock():
        state = store.load_or_new()
        if state.next is not None:
            asked = key_type or rsa_key_size or elliptic_curve
            if asked:
                raise SettingsError(
                    f"a next key {state.next.key.describe()} is already staged (since "
                    f"{when_text(state.next.staged_at)}); commit it before staging another"
                )
            if not store.key_path.is_file():
                raise DaneError(
                    f"the staged key {store.key_path} is missing; move {store.state_path} away "
                    "and stage again"
                )
            result.say(f"next key {state.next.key.describe()} is already staged; publishing it")
        else:
            if material.key_spki is None:  # pragma: no cover - lineages always have one
                raise CertificateError("the lineage has no private key")
            shape = choose_shape(
                shape_of(material.key_spki),
                key_type=key_type,
                rsa_key_size=rsa_key_size,
                elliptic_curve=elliptic_curve,
            )
            key, pem = generate(shape)
            next_spki = spki_der(key.public_key())
            records = next_records(settings, next_spki)
            if not records:
                raise SettingsError(
                    "none of the 'params' is a usage 3 (or 1) selector 1 record, so a next key "
                    "cannot be published ahead; add '3 1 1'"
                )
            was_new = not any(_served_at_primary(t) for t in targets)
            fallback = max((t.zone.ttl or 0 for t in targets), default=0)
            zones = {t.zone.origin: t.zone for t in targets}.values()
            from certbot_dane_tlsa.rollover_dns import negative_ttl

            neg = max(negative_ttl(zone) for zone in zones)
            store.write_key(pem)
            state.next = NextKey(
                key_info(next_spki, records),
                now,
                ttl=observe_ttl(targets, fallback),
                negative_ttl=neg,
                owner_was_new=was_new,
            )
            state.note(now, f"staged next key {state.next.key.describe()}")
            store.save(state)
            result.say(f"staged next key {state.next.key.describe()} ({shape}) in {store.key_path}")
    deploy(settings, lineage.live_dir, dry_run=False, out=out, reload_unchanged=False)
    with store.lock():
        state = store.load_or_new()
        nxt = state.next
        if nxt is None:  # pragma: no cover - only if another run committed meanwhile
            return result
        problems = observe_next(settings, nxt, targets, utcnow())
        store.save(state)
    for problem in problems:
        log.info("%s", problem)
    result.say(
        "published beside the current key; commit with 'certbot-dane-tlsa rollover commit': "
        + wait_text(nxt, utcnow(), resolver_required=settings.resolver is not None)
    )
    return result


def _served_at_primary(target: Target) -> bool:
    from certbot_dane_tlsa.rollover_dns import ask_tlsa

    try:
        return bool(ask_tlsa(_primary(target.zone), target.owner).records)
    except DaneError:
        return False


# --- commit ----------------------------------------------------------------------------------


class KeySwap:
    """Puts the staged key where ``live/privkey.pem`` points, and puts the old entry back.

    With reuse_key certbot renews with whatever key ``live/privkey.pem`` holds. The entry in
    ``archive/`` may be a file or (after reuse) a symlink to an older version; whichever it
    is, :meth:`restore` recreates it exactly, mode, owner and times included.
    """

    def __init__(self, live_dir: Path) -> None:
        link = Path(live_dir) / "privkey.pem"
        if not link.is_symlink():
            raise DaneError(f"{link} is not a symlink into archive/: not a certbot lineage")
        self.target = Path(os.path.normpath(Path(live_dir) / os.readlink(link)))
        self.link_text: str | None = None
        self.data = b""
        self.stat: os.stat_result | None = None
        if self.target.is_symlink():
            self.link_text = os.readlink(self.target)
        else:
            self.data = self.target.read_bytes()
            self.stat = self.target.stat()

    def install(self, pem: bytes) -> None:
        mode = 0o600 if self.stat is None else stat.S_IMODE(self.stat.st_mode)
        self._write_file(pem, mode)

    def _write_file(self, data: bytes, mode: int) -> None:
        fd, name = tempfile.mkstemp(prefix=".privkey.", dir=self.target.parent)
        tmp = Path(name)
        try:
            os.fchmod(fd, mode)
            if self.stat is not None:
                os.fchown(fd, self.stat.st_uid, self.stat.st_gid)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if self.stat is not None and data == self.data:
                os.utime(tmp, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))
            os.replace(tmp, self.target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def restore(self) -> None:
        if self.link_text is not None:
            tmp = self.target.with_name(f".{self.target.name}.restore")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self.link_text, tmp)
            os.replace(tmp, self.target)
        else:
            assert self.stat is not None
            self._write_file(self.data, stat.S_IMODE(self.stat.st_mode))


def certbot_argv(settings: Settings, name: str, dirs: CertbotDirs, shape: KeyShape) -> list[str]:
    return [
        *settings.certbot,
        "renew",
        "--cert-name", name,
        "--reuse-key",
        "--force-renewal",
        "--no-random-sleep-on-renew",
        "--non-interactive",
        "--config-dir", str(dirs.config_dir),
        "--work-dir", str(dirs.work_dir),
        "--logs-dir", str(dirs.logs_dir),
        *shape.certbot_args(),
    ]  # fmt: skip


def _lineage_spki(live_dir: Path) -> str:
    return spki_sha256(Lineage.from_dir(live_dir).material().leaf.spki)


def commit(
    settings: Settings,
    live_dir: Path,
    dirs: CertbotDirs,
    *,
    out: TextIO,
    if_safe: bool = False,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> StepResult:
    """Issue the certificate for the staged key once that is safe; refuse (unchanged) before."""
    from certbot_dane_tlsa.pipeline import deploy
    from certbot_dane_tlsa.runner import run
    from certbot_dane_tlsa.tlsa import load_private_key

    _require_rollover(settings)
    result = StepResult()
    lineage = Lineage.from_dir(live_dir)
    material = lineage.material()
    targets = _targets(settings, material, lineage.names())
    store = state_store(settings, lineage.live_dir)
    live_spki = spki_sha256(material.leaf.spki)
    with store.lock():
        state = store.load_or_new()
        nxt = state.next
        if nxt is None:
            if if_safe:
                result.say("no next key is staged: nothing to commit")
                return result
            raise DaneError("no next key is staged: run 'certbot-dane-tlsa rollover stage' first")
        if nxt.key.spki_sha256 == live_spki:
            result.say("the certificate already uses the staged key; finishing the deploy")
            pem = b""
        else:
            problems = observe_next(settings, nxt, targets, now or utcnow())
            store.save(state)
            moment = now or utcnow()
            wait = commit_wait(nxt, moment, resolver_required=settings.resolver is not None)
            if wait is None or wait > 0:
                needs_resolver = settings.resolver is not None
                text = "not yet safe to commit: " + "; ".join(
                    [*problems, wait_text(nxt, moment, resolver_required=needs_resolver)]
                )
                if if_safe:
                    result.say(text)
                    return result
                raise NotReadyError(text + "; nothing was changed")
            key = load_private_key(store.key_path)
            if spki_sha256(spki_der(key.public_key())) != nxt.key.spki_sha256:
                raise DaneError(
                    f"{store.key_path} is not the staged key the state file records; "
                    "nothing was changed"
                )
            pem = store.key_path.read_bytes()
        before = store.raw()
    if pem:
        shape = KeyShape(nxt.key.key_type, nxt.key.key_size, nxt.key.curve)
        swap = KeySwap(lineage.live_dir)
        argv = certbot_argv(settings, lineage.name, dirs, shape)
        result.say(f"committing: {' '.join(argv)}")
        swap.install(pem)
        failure: DaneError | None = None
        try:
            run(argv, what="certbot renew", timeout=CERTBOT_TIMEOUT, env=env or dict(os.environ))
        except DaneError as exc:
            failure = exc
        finally:
            swap.restore()
        if _lineage_spki(lineage.live_dir) != nxt.key.spki_sha256:
            with store.lock():
                store.restore_raw(before)
            detail = str(failure) if failure else "the lineage does not use the staged key"
            raise CommandError(
                f"{detail}; the previous key file and state were restored, nothing changed"
            )
        if failure is not None:
            log.warning("certbot reported a problem after issuing the certificate: %s", failure)
        result.say(f"certbot issued the certificate for the staged key {nxt.key.describe()}")
    deploy(settings, lineage.live_dir, dry_run=False, out=out, reload_unchanged=True)
    final = store.load_or_new()
    waiting = [r for r in final.retiring if r.live_since is None]
    if waiting:
        raise DaneError(
            "the new certificate is published, but the live server was not seen presenting "
            "the new key: the old key's records stay; run 'certbot-dane-tlsa prune' later"
        )
    for old in final.retiring:
        result.say(
            f"the old key {old.key.describe()} stays published until "
            f"{when_text(prune_ready_at(old))}; "
            "then run 'certbot-dane-tlsa prune' (certbot's renewal run does it too)"
        )
    return result


# --- prune -----------------------------------------------------------------------------------


def prune(settings: Settings, live_dir: Path, *, out: TextIO) -> StepResult:
    """Remove retired keys' records once safe; say when the others may go."""
    from certbot_dane_tlsa.pipeline import deploy

    _require_rollover(settings)
    result = StepResult()
    lineage = Lineage.from_dir(live_dir)
    store = state_store(settings, lineage.live_dir)
    before = store.load_or_new()
    if not before.retiring:
        result.say("no retired key's records wait for pruning")
        return result
    deploy(settings, lineage.live_dir, dry_run=False, out=out, reload_unchanged=False)
    after = store.load_or_new()
    kept = {r.key.spki_sha256 for r in after.retiring}
    for old in before.retiring:
        if old.key.spki_sha256 not in kept:
            result.say(f"removed the records of the retired key {old.key.describe()}")
    for old in after.retiring:
        ready = prune_ready_at(old)
        when = (
            f"after {when_text(ready)}"
            if ready
            else "once the live server is seen presenting the new key"
        )
        result.say(f"the records of {old.key.describe()} stay until {when}")
    return result
