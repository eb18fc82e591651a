"""The default policy's rules (policy-wasm/README.md), in Python, for componentize-py.

A port of policy-wasm/src/rules.rs: the same decisions, reasons and orders for the same facts
(tests/policy_languages.rs checks it on every conformance vector and on random facts), and the
same notices.
"""

from wit_world import exports
from wit_world.imports import types as t

DAY = 86_400
HOSTNAME_GROUP = "hostname"

# key, minimum, maximum, default
PARAM_SPECS = [
    ("letsencrypt-min-days", 0, 3650, 25),
    ("other-min-days", 0, 3650, 3),
    ("short-lifetime-percent", 1, 99, 33),
    ("min-rsa-bits", 512, 16384, 2048),
]

INTERNAL_SUFFIXES = [
    "localhost", "local", "invalid", "test", "example", "onion", "alt", "home.arpa", "internal",
    "localdomain", "lan", "corp", "home", "intranet", "private",
]

UNUSABLE = {"missing", "unreadable", "malformed", "key-mismatch", "expired", "not-yet-valid", "revoked"}
ABOUT_EXPIRY = {"expired", "expiring-soon", "renewal-window"}
ROUTINE = {"expiring-soon", "renewal-window"}

REASON_CLASSES = {
    "weak-signature": t.Reason_WeakSignature,
    "weak-key": t.Reason_WeakKey,
    "revoked": t.Reason_Revoked,
    "self-signed": t.Reason_SelfSigned,
    "untrusted-chain": t.Reason_UntrustedChain,
    "hostname-mismatch": t.Reason_HostnameMismatch,
    "hostname-not-on-this-server": t.Reason_HostnameNotOnThisServer,
    "expired": t.Reason_Expired,
    "expiring-soon": t.Reason_ExpiringSoon,
    "not-yet-valid": t.Reason_NotYetValid,
    "key-mismatch": t.Reason_KeyMismatch,
    "missing": t.Reason_Missing,
    "unreadable": t.Reason_Unreadable,
    "malformed": t.Reason_Malformed,
    "renewal-window": t.Reason_RenewalWindow,
}


def parse_params(params):
    values = {key: default for key, _, _, default in PARAM_SPECS}
    notices = []
    for key, value in params:
        spec = next((s for s in PARAM_SPECS if s[0] == key), None)
        if spec is None:
            continue
        _, low, high, default = spec
        if value == "" or not all("0" <= c <= "9" for c in value):
            problem = "is not a decimal integer"
        elif low <= int(value) <= high:
            values[key] = int(value)
            continue
        else:
            problem = f"is out of range ({low} to {high})"
        values[key] = default
        notices.append(t.Notice(t.Level.WARNING, None,
                                f"Policy parameter {key} = {value!r} {problem}; the default {default} is used instead."))
    return values, notices


def is_lets_encrypt(cert):
    return cert.issuer_org is not None and "let's encrypt" in cert.issuer_org.lower()


def expiring_soon_threshold(cert, params):
    days = params["letsencrypt-min-days"] if is_lets_encrypt(cert) else params["other-min-days"]
    base = days * DAY
    lifetime = cert.not_after - cert.not_before
    if lifetime < 2 * base:
        return (lifetime * params["short-lifetime-percent"]) // 100
    return base


def fnv1a_64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def renewal_point(window, fingerprint):
    length = window.end - window.start
    if length <= 0:
        return window.start
    return window.start + fnv1a_64(fingerprint.encode()) % length


def reserved_for_internal_use(hostname):
    name = hostname.rstrip(".").lower()
    if "." not in name or any(label == "" for label in name.split(".")):
        return False
    return any(name.endswith("." + suffix) for suffix in INTERNAL_SUFFIXES)


def why_not_order(facts):
    """None if a hostname certificate can be ordered, else (message, makes the server ineligible)."""
    if facts.disable_auto_hostname_certificate:
        return ("automatic hostname certificates are disabled (disable_auto_hostname_certificate)", False)
    if facts.acme is None:
        return ("no certificate authority is configured", False)
    if not facts.hostname_is_fqdn and reserved_for_internal_use(facts.hostname):
        return (f"the hostname {facts.hostname} is a name reserved for internal use (RFC 6761/.internal); a public CA "
                "cannot issue for it; set [acme] public = false for a private CA", True)
    if not facts.hostname_is_fqdn:
        return ("the hostname is not a fully qualified domain name", True)
    if facts.hostname_dns == t.DnsStatus.POINTS_ELSEWHERE:
        return ("the hostname does not resolve to this server's main IP", True)
    if facts.hostname_dns == t.DnsStatus.DOES_NOT_RESOLVE:
        return ("the hostname does not resolve in DNS", True)
    if isinstance(facts.caa, t.CaaStatus_Forbids):
        return (f"CAA records for the hostname do not allow the configured CA (allowed: {facts.caa.value})", True)
    return None


def why_not_order_group(facts, group):
    if group == HOSTNAME_GROUP:
        return why_not_order(facts)
    found = next((g for g in facts.groups if g.name == group), None)
    if found is None:
        return (f"the certificate group {group} is not known", False)
    if facts.acme is None:
        return ("no certificate authority is configured", False)
    if not found.orderable:
        return (f"the configured CA cannot issue for the group's names ({', '.join(found.names)})", False)
    return None


def group_main_name(facts, group):
    found = next((g for g in facts.groups if g.name == group), None)
    if found is not None and found.names:
        return found.names[0]
    return facts.hostname


def is_weak_signature(algorithm):
    name = algorithm.lower()
    return any(weak in name for weak in ("md2", "md4", "md5", "sha1"))


def is_weak_key(key, params):
    if key.kind == t.KeyKind.RSA:
        return key.bits < params["min-rsa-bits"]
    if key.kind == t.KeyKind.DSA:
        return True
    if key.kind == t.KeyKind.EC:
        return key.bits < 256
    return False


def intermediate_expiring_first(cert):
    served = [e for e in cert.chain
              if e.source == t.ChainSource.FILE and not e.self_signed and e.not_after < cert.not_after]
    return min(served, key=lambda e: e.not_after) if served else None


def service_reasons(service, now, params):
    state = service.certificate
    if isinstance(state, t.CertificateState_Missing):
        return ["missing"]
    if isinstance(state, t.CertificateState_Unreadable):
        return ["unreadable"]
    if isinstance(state, t.CertificateState_Malformed):
        return ["malformed"]
    cert = state.value
    reasons = []
    key = service.key
    if isinstance(key, t.KeyStatus_Mismatch):
        reasons.append("key-mismatch")
    elif isinstance(key, t.KeyStatus_Missing):
        reasons.append("missing")
    elif isinstance(key, t.KeyStatus_Unreadable):
        reasons.append("unreadable")
    elif isinstance(key, t.KeyStatus_Malformed):
        reasons.append("malformed")
    leaf_expired = now >= cert.not_after
    first = intermediate_expiring_first(cert)
    not_after = first.not_after if first is not None else cert.not_after
    expired = now >= not_after
    if expired:
        reasons.append("expired")
    if now < cert.not_before:
        reasons.append("not-yet-valid")
    if isinstance(cert.revocation, t.Revocation_Revoked):
        reasons.append("revoked")
    if is_weak_signature(cert.signature_algorithm) or any(
            not e.self_signed and is_weak_signature(e.signature_algorithm) for e in cert.chain):
        reasons.append("weak-signature")
    if is_weak_key(cert.public_key, params) or any(is_weak_key(e.public_key, params) for e in cert.chain):
        reasons.append("weak-key")
    if cert.self_signed:
        reasons.append("self-signed")
    path = cert.path
    if isinstance(path, t.PathStatus_Valid):
        bad_chain = False
    elif isinstance(path, t.PathStatus_Invalid) and expired and not leaf_expired:
        bad_chain = False
    elif isinstance(path, (t.PathStatus_Incomplete, t.PathStatus_Untrusted, t.PathStatus_Invalid)):
        bad_chain = True
    else:
        outside_validity = leaf_expired or now < cert.not_before
        bad_chain = isinstance(cert.chain_status, (t.ChainStatus_Untrusted, t.ChainStatus_Incomplete)) \
            and not outside_validity
    if bad_chain and not cert.self_signed:
        reasons.append("untrusted-chain")
    if not service.covers_hostname:
        reasons.append("hostname-mismatch")
    if not expired and not_after - now < expiring_soon_threshold(cert, params):
        reasons.append("expiring-soon")
    window = cert.renewal_window
    if window is not None and now >= renewal_point(window, cert.sha256_fingerprint):
        reasons.append("renewal-window")
    return reasons


def decide(reasons, order_possible):
    if not reasons:
        return t.Decision.KEEP
    unusable = any(r in UNUSABLE for r in reasons)
    if order_possible:
        return t.Decision.REPLACE_OR_PLACEHOLDER if unusable else t.Decision.REPLACE
    return t.Decision.PLACEHOLDER if unusable else t.Decision.KEEP


def format_duration(seconds):
    seconds = max(seconds, 0)
    if seconds >= 2 * DAY:
        n, unit = seconds // DAY, "day"
    elif seconds >= 2 * 3600:
        n, unit = seconds // 3600, "hour"
    elif seconds >= 2 * 60:
        n, unit = seconds // 60, "minute"
    else:
        n, unit = seconds, "second"
    return f"1 {unit}" if n == 1 else f"{n} {unit}s"


def format_time(timestamp):
    days, second_of_day = divmod(timestamp, DAY)
    z = days + 719_468
    era, day_of_era = divmod(z, 146_097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return f"{year:04}-{month:02}-{day:02} {second_of_day // 3600:02}:{second_of_day % 3600 // 60:02} UTC"


def join_and(items):
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def describe(service, reasons, facts, params):
    state = service.certificate
    if isinstance(state, t.CertificateState_Missing):
        return f"Service {service.name}: the certificate file is missing ({state.value})"
    if isinstance(state, t.CertificateState_Unreadable):
        return f"Service {service.name}: the certificate file cannot be read ({state.value})"
    if isinstance(state, t.CertificateState_Malformed):
        return f"Service {service.name}: the certificate file holds no usable certificate ({state.value})"
    cert = state.value
    now = facts.now
    clauses, predicates = [], []
    for reason in reasons:
        if reason in ("missing", "unreadable", "malformed"):
            key = service.key
            if isinstance(key, t.KeyStatus_Missing):
                clauses.append(f"the private key file is missing ({key.value})")
            elif isinstance(key, t.KeyStatus_Unreadable):
                clauses.append(f"the private key file cannot be read ({key.value})")
            elif isinstance(key, t.KeyStatus_Malformed):
                clauses.append(f"the private key file holds no usable private key ({key.value})")
            else:
                clauses.append("the private key file is not usable")
        elif reason == "key-mismatch":
            clauses.append("the private key does not belong to the certificate")
        elif reason == "expired":
            first = intermediate_expiring_first(cert)
            if first is not None and now < cert.not_after:
                predicates.append(f"is served with an intermediate certificate ({first.subject}) that expired "
                                  f"{format_duration(now - first.not_after)} ago (on {format_time(first.not_after)})")
            else:
                predicates.append(f"expired {format_duration(now - cert.not_after)} ago "
                                  f"(on {format_time(cert.not_after)})")
        elif reason == "not-yet-valid":
            predicates.append(f"is not valid before {format_time(cert.not_before)}")
        elif reason == "revoked":
            details = cert.revocation.value
            predicates.append(f"was revoked by its CA on {format_time(details.revoked_at)} (reason: {details.reason})")
        elif reason == "weak-signature":
            weak = next((e for e in cert.chain if not e.self_signed and is_weak_signature(e.signature_algorithm)), None)
            if weak is not None and not is_weak_signature(cert.signature_algorithm):
                predicates.append(f"has an intermediate certificate ({weak.subject}) signed with a weak algorithm "
                                  f"({weak.signature_algorithm})")
            else:
                predicates.append(f"is signed with a weak algorithm ({cert.signature_algorithm})")
        elif reason == "weak-key":
            in_chain = None
            if not is_weak_key(cert.public_key, params):
                in_chain = next((e for e in cert.chain if is_weak_key(e.public_key, params)), None)
            key = in_chain.public_key if in_chain is not None else cert.public_key
            if key.kind == t.KeyKind.RSA:
                text = f"has a weak key (RSA, {key.bits} bits; at least {params['min-rsa-bits']} are required)"
            elif key.kind == t.KeyKind.DSA:
                text = "has a deprecated DSA key"
            else:
                curve = f", {key.curve}" if key.curve is not None else ""
                text = f"has a weak key (EC, {key.bits} bits{curve}; at least 256 are required)"
            if in_chain is not None:
                text = f"has an intermediate certificate ({in_chain.subject}) that {text}"
            predicates.append(text)
        elif reason == "self-signed":
            predicates.append("is self-signed")
        elif reason == "untrusted-chain":
            path, chain = cert.path, cert.chain_status
            if isinstance(path, t.PathStatus_Incomplete) or isinstance(chain, t.ChainStatus_Incomplete):
                why = path.value if isinstance(path, t.PathStatus_Incomplete) else chain.value
                predicates.append(f"has an incomplete chain ({why})")
            elif isinstance(path, (t.PathStatus_Untrusted, t.PathStatus_Invalid)):
                predicates.append(f"is not trusted ({path.value})")
            elif isinstance(chain, t.ChainStatus_Untrusted):
                predicates.append(f"is not trusted ({chain.value})")
            else:
                predicates.append("is not trusted")
        elif reason == "hostname-mismatch":
            predicates.append(f"does not cover the hostname {facts.hostname}")
        elif reason == "expiring-soon":
            first = intermediate_expiring_first(cert)
            if first is not None:
                predicates.append(f"is served with an intermediate certificate ({first.subject}) that expires in "
                                  f"{format_duration(first.not_after - now)} (on {format_time(first.not_after)}), "
                                  "before the certificate itself")
            else:
                predicates.append(f"expires in {format_duration(cert.not_after - now)} "
                                  f"(on {format_time(cert.not_after)})")
        elif reason == "renewal-window":
            window = cert.renewal_window
            if window is not None and window.explanation_url is not None:
                predicates.append("is due for renewal according to its CA's renewal information "
                                  f"(see {window.explanation_url})")
            else:
                predicates.append("is due for renewal according to its CA's renewal information")
    if predicates:
        clauses.append("the certificate " + join_and(predicates))
    return f"Service {service.name}: " + "; ".join(clauses)


def side_notices(service):
    notices = []
    name = service.name
    state = service.certificate
    if isinstance(state, t.CertificateState_Ok) and isinstance(state.value.revocation, t.Revocation_Unknown):
        notices.append(t.Notice(t.Level.WARNING, name,
                                f"Service {name}: the revocation status of the certificate could not be checked "
                                f"({state.value.revocation.value}). It is not treated as revoked."))
    for served in service.served:
        if served.matches_installed:
            continue
        if served.sha256_fingerprint is not None:
            message = (f"Service {name}: {served.endpoint} serves a different certificate than the installed one. "
                       "Reload or restart the service so that it uses the installed certificate.")
        else:
            message = (f"Service {name}: {served.endpoint} could not be checked "
                       f"({served.error or 'no certificate was served'}), so it may not serve the installed "
                       "certificate. Make sure the service is running and reload it.")
        notices.append(t.Notice(t.Level.WARNING, name, message))
    return notices


def evaluate(facts):
    params, notices = parse_params(facts.params)
    disabled = facts.disable_service_certificate_management
    if disabled:
        notices.append(t.Notice(t.Level.INFO, None,
                                "Service certificate management is disabled (disable_service_certificate_management): "
                                "no service certificate is replaced automatically, and expired or expiring ones are "
                                "not reported."))
    plans = []
    for service in facts.services:
        reasons = service_reasons(service, facts.now, params)
        level = t.Level.ERROR if any(r in UNUSABLE for r in reasons) else t.Level.WARNING
        described = describe(service, reasons, facts, params)
        group = service.group if service.group is not None else HOSTNAME_GROUP
        why_not = why_not_order_group(facts, group)
        notice = None
        if service.check_only:
            decision = t.Decision.KEEP
            if reasons:
                notice = (level, f"{described}. It is only checked here (check-only): replace it where its key lives.")
        elif disabled:
            decision = t.Decision.KEEP
            if not all(r in ABOUT_EXPIRY for r in reasons):
                notice = (level, f"{described}. It is kept, because service certificate management is disabled "
                                 "(disable_service_certificate_management).")
        else:
            decision = decide(reasons, why_not is None)
            host = group_main_name(facts, group)
            why = why_not[0] if why_not is not None else ""
            if decision == t.Decision.REPLACE:
                routine = all(r in ROUTINE for r in reasons)
                notice = (t.Level.INFO if routine else t.Level.WARNING,
                          f"{described}. A new certificate for {host} is requested from the CA and will replace it "
                          "once issued.")
            elif decision == t.Decision.REPLACE_OR_PLACEHOLDER:
                notice = (t.Level.ERROR,
                          f"{described}. A new certificate for {host} is requested from the CA and will replace it "
                          "if issued in this run; otherwise a self-signed placeholder is installed.")
            elif decision == t.Decision.PLACEHOLDER:
                notice = (t.Level.ERROR,
                          f"{described}. It is replaced by a self-signed placeholder, because no certificate for "
                          f"{host} can be ordered: {why}.")
            elif reasons:
                notice = (t.Level.WARNING,
                          f"{described}. It is kept, because no certificate for {host} can be ordered: {why}.")
            defect_kept = decision == t.Decision.KEEP and reasons
            if why_not is not None and why_not[1] and (decision == t.Decision.PLACEHOLDER or defect_kept):
                reasons.append("hostname-not-on-this-server")
        if notice is not None:
            notices.append(t.Notice(notice[0], service.name, notice[1]))
        notices.extend(side_notices(service))
        plans.append(t.ServicePlan(service.name, decision, [REASON_CLASSES[r]() for r in reasons]))

    orders = []
    if not disabled:
        for g in facts.groups:
            if why_not_order_group(facts, g.name) is not None:
                continue
            wanted = any(
                not service.check_only
                and (service.group if service.group is not None else HOSTNAME_GROUP) == g.name
                and plan.decision in (t.Decision.REPLACE, t.Decision.REPLACE_OR_PLACEHOLDER)
                for service, plan in zip(facts.services, plans))
            if wanted:
                orders.append(t.OrderRequest(g.name))
    return t.Plan(plans, orders, notices)


class Rules(exports.Rules):
    def metadata(self):
        return t.PolicyMetadata(
            "default-python", "0.2.0",
            "The default policy's rules (policy-wasm/README.md), in Python (componentize-py)", "0.2.0")

    def evaluate(self, facts):
        return evaluate(facts)
