// The default policy's rules (policy-wasm/README.md), in JavaScript, for componentize-js.
//
// A port of policy-wasm/src/rules.rs: the same decisions, reasons, orders and notices for the
// same facts (tests/policy_languages.rs checks it on every conformance vector and on random
// facts). jco's mapping of the contract: records are objects with camelCase fields, variants are
// `{tag, val}`, enums are their kebab-case names, `s64` timestamps are BigInts, an `option` is
// the value or `undefined`.

const DAY = 86400n;
const HOSTNAME_GROUP = "hostname";

const PARAM_SPECS = [
  ["letsencrypt-min-days", 0, 3650, 25],
  ["other-min-days", 0, 3650, 3],
  ["short-lifetime-percent", 1, 99, 33],
  ["min-rsa-bits", 512, 16384, 2048],
];

const INTERNAL_SUFFIXES = ["localhost", "local", "invalid", "test", "example", "onion", "alt", "home.arpa",
  "internal", "localdomain", "lan", "corp", "home", "intranet", "private"];

const UNUSABLE = new Set(["missing", "unreadable", "malformed", "key-mismatch", "expired", "not-yet-valid", "revoked"]);
const ABOUT_EXPIRY = new Set(["expired", "expiring-soon", "renewal-window"]);
const ROUTINE = new Set(["expiring-soon", "renewal-window"]);

function parseParams(params) {
  const values = {};
  for (const [key, , , def] of PARAM_SPECS) values[key] = def;
  const notices = [];
  for (const [key, value] of params) {
    const spec = PARAM_SPECS.find((s) => s[0] === key);
    if (!spec) continue;
    const [, low, high, def] = spec;
    let problem;
    if (!/^[0-9]+$/.test(value)) {
      problem = "is not a decimal integer";
    } else if (BigInt(value) >= BigInt(low) && BigInt(value) <= BigInt(high)) {
      values[key] = Number(value);
      continue;
    } else {
      problem = `is out of range (${low} to ${high})`;
    }
    values[key] = def;
    notices.push({ level: "warning", service: undefined,
      message: `Policy parameter ${key} = ${JSON.stringify(value)} ${problem}; the default ${def} is used instead.` });
  }
  return [values, notices];
}

const isLetsEncrypt = (cert) => cert.issuerOrg !== undefined && cert.issuerOrg !== null
  && cert.issuerOrg.toLowerCase().includes("let's encrypt");

function expiringSoonThreshold(cert, params) {
  const days = isLetsEncrypt(cert) ? params["letsencrypt-min-days"] : params["other-min-days"];
  const base = BigInt(days) * DAY;
  const lifetime = cert.notAfter - cert.notBefore;
  if (lifetime < 2n * base) {
    const product = lifetime * BigInt(params["short-lifetime-percent"]);
    // Rounded down (towards minus infinity), as Rust's div_euclid by a positive number.
    const q = product / 100n;
    return product < 0n && q * 100n !== product ? q - 1n : q;
  }
  return base;
}

function fnv1a64(text) {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(text)) {
    h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

function renewalPoint(window, fingerprint) {
  const length = window.end - window.start;
  if (length <= 0n) return window.start;
  return window.start + (fnv1a64(fingerprint) % length);
}

function reservedForInternalUse(hostname) {
  const name = hostname.replace(/\.+$/, "").toLowerCase();
  if (!name.includes(".") || name.split(".").some((l) => l === "")) return false;
  return INTERNAL_SUFFIXES.some((s) => name.endsWith("." + s));
}

// null if a hostname certificate can be ordered, else [message, makes the server ineligible].
function whyNotOrder(facts) {
  if (facts.disableAutoHostnameCertificate)
    return ["automatic hostname certificates are disabled (disable_auto_hostname_certificate)", false];
  if (facts.acme === undefined || facts.acme === null) return ["no certificate authority is configured", false];
  if (!facts.hostnameIsFqdn && reservedForInternalUse(facts.hostname))
    return [`the hostname ${facts.hostname} is a name reserved for internal use (RFC 6761/.internal); a public CA `
      + "cannot issue for it; set [acme] public = false for a private CA", true];
  if (!facts.hostnameIsFqdn) return ["the hostname is not a fully qualified domain name", true];
  if (facts.hostnameDns === "points-elsewhere") return ["the hostname does not resolve to this server's main IP", true];
  if (facts.hostnameDns === "does-not-resolve") return ["the hostname does not resolve in DNS", true];
  if (facts.caa.tag === "forbids")
    return [`CAA records for the hostname do not allow the configured CA (allowed: ${facts.caa.val})`, true];
  return null;
}

function whyNotOrderGroup(facts, group) {
  if (group === HOSTNAME_GROUP) return whyNotOrder(facts);
  const found = facts.groups.find((g) => g.name === group);
  if (!found) return [`the certificate group ${group} is not known`, false];
  if (facts.acme === undefined || facts.acme === null) return ["no certificate authority is configured", false];
  if (!found.orderable) return [`the configured CA cannot issue for the group's names (${found.names.join(", ")})`, false];
  return null;
}

function groupMainName(facts, group) {
  const found = facts.groups.find((g) => g.name === group);
  return found && found.names.length > 0 ? found.names[0] : facts.hostname;
}

const isWeakSignature = (alg) => ["md2", "md4", "md5", "sha1"].some((w) => alg.toLowerCase().includes(w));

function isWeakKey(key, params) {
  switch (key.kind) {
    case "rsa": return key.bits < params["min-rsa-bits"];
    case "dsa": return true;
    case "ec": return key.bits < 256;
    default: return false;
  }
}

function intermediateExpiringFirst(cert) {
  let first = null;
  for (const e of cert.chain) {
    if (e.source === "file" && !e.selfSigned && e.notAfter < cert.notAfter && (first === null || e.notAfter < first.notAfter)) {
      first = e;
    }
  }
  return first;
}

function serviceReasons(service, now, params) {
  const state = service.certificate;
  if (state.tag !== "ok") return [state.tag];
  const cert = state.val;
  const reasons = [];
  switch (service.key.tag) {
    case "mismatch": reasons.push("key-mismatch"); break;
    case "missing": case "unreadable": case "malformed": reasons.push(service.key.tag); break;
    default: break;
  }
  const leafExpired = now >= cert.notAfter;
  const first = intermediateExpiringFirst(cert);
  const notAfter = first !== null ? first.notAfter : cert.notAfter;
  const expired = now >= notAfter;
  if (expired) reasons.push("expired");
  if (now < cert.notBefore) reasons.push("not-yet-valid");
  if (cert.revocation.tag === "revoked") reasons.push("revoked");
  if (isWeakSignature(cert.signatureAlgorithm)
    || cert.chain.some((e) => !e.selfSigned && isWeakSignature(e.signatureAlgorithm))) reasons.push("weak-signature");
  if (isWeakKey(cert.publicKey, params) || cert.chain.some((e) => isWeakKey(e.publicKey, params))) reasons.push("weak-key");
  if (cert.selfSigned) reasons.push("self-signed");
  let badChain;
  const path = cert.path.tag;
  if (path === "valid") badChain = false;
  else if (path === "invalid" && expired && !leafExpired) badChain = false;
  else if (path === "incomplete" || path === "untrusted" || path === "invalid") badChain = true;
  else {
    const outside = leafExpired || now < cert.notBefore;
    badChain = (cert.chainStatus.tag === "untrusted" || cert.chainStatus.tag === "incomplete") && !outside;
  }
  if (badChain && !cert.selfSigned) reasons.push("untrusted-chain");
  if (!service.coversHostname) reasons.push("hostname-mismatch");
  if (!expired && notAfter - now < expiringSoonThreshold(cert, params)) reasons.push("expiring-soon");
  const window = cert.renewalWindow;
  if (window !== undefined && window !== null && now >= renewalPoint(window, cert.sha256Fingerprint)) reasons.push("renewal-window");
  return reasons;
}

function decide(reasons, orderPossible) {
  if (reasons.length === 0) return "keep";
  const unusable = reasons.some((r) => UNUSABLE.has(r));
  if (orderPossible) return unusable ? "replace-or-placeholder" : "replace";
  return unusable ? "placeholder" : "keep";
}

function formatDuration(seconds) {
  if (seconds < 0n) seconds = 0n;
  let n, unit;
  if (seconds >= 2n * DAY) { n = seconds / DAY; unit = "day"; }
  else if (seconds >= 7200n) { n = seconds / 3600n; unit = "hour"; }
  else if (seconds >= 120n) { n = seconds / 60n; unit = "minute"; }
  else { n = seconds; unit = "second"; }
  return n === 1n ? `1 ${unit}` : `${n} ${unit}s`;
}

// Floor division and modulo for BigInts (Rust's div_euclid/rem_euclid by a positive number).
const fdiv = (a, b) => { const q = a / b; return a % b !== 0n && a < 0n ? q - 1n : q; };
const fmod = (a, b) => a - fdiv(a, b) * b;
const pad = (n, w) => { const s = (n < 0n ? -n : n).toString().padStart(w, "0"); return n < 0n ? "-" + s : s; };

function formatTime(timestamp) {
  const days = fdiv(timestamp, DAY);
  const secondOfDay = fmod(timestamp, DAY);
  const z = days + 719468n;
  const era = fdiv(z, 146097n);
  const doe = fmod(z, 146097n);
  const yoe = (doe - doe / 1460n + doe / 36524n - doe / 146096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const day = doy - (153n * mp + 2n) / 5n + 1n;
  const month = mp < 10n ? mp + 3n : mp - 9n;
  const year = yoe + era * 400n + (month <= 2n ? 1n : 0n);
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)} ${pad(secondOfDay / 3600n, 2)}:${pad((secondOfDay % 3600n) / 60n, 2)} UTC`;
}

function joinAnd(items) {
  if (items.length <= 1) return items.join("");
  return items.slice(0, -1).join(", ") + " and " + items[items.length - 1];
}

function describe(service, reasons, facts, params) {
  const state = service.certificate;
  const name = service.name;
  if (state.tag === "missing") return `Service ${name}: the certificate file is missing (${state.val})`;
  if (state.tag === "unreadable") return `Service ${name}: the certificate file cannot be read (${state.val})`;
  if (state.tag === "malformed") return `Service ${name}: the certificate file holds no usable certificate (${state.val})`;
  const cert = state.val;
  const now = facts.now;
  const clauses = [];
  const predicates = [];
  for (const reason of reasons) {
    switch (reason) {
      case "missing": case "unreadable": case "malformed": {
        const key = service.key;
        if (key.tag === "missing") clauses.push(`the private key file is missing (${key.val})`);
        else if (key.tag === "unreadable") clauses.push(`the private key file cannot be read (${key.val})`);
        else if (key.tag === "malformed") clauses.push(`the private key file holds no usable private key (${key.val})`);
        else clauses.push("the private key file is not usable");
        break;
      }
      case "key-mismatch": clauses.push("the private key does not belong to the certificate"); break;
      case "expired": {
        const first = intermediateExpiringFirst(cert);
        if (first !== null && now < cert.notAfter) {
          predicates.push(`is served with an intermediate certificate (${first.subject}) that expired `
            + `${formatDuration(now - first.notAfter)} ago (on ${formatTime(first.notAfter)})`);
        } else {
          predicates.push(`expired ${formatDuration(now - cert.notAfter)} ago (on ${formatTime(cert.notAfter)})`);
        }
        break;
      }
      case "not-yet-valid": predicates.push(`is not valid before ${formatTime(cert.notBefore)}`); break;
      case "revoked": {
        const d = cert.revocation.val;
        predicates.push(`was revoked by its CA on ${formatTime(d.revokedAt)} (reason: ${d.reason})`);
        break;
      }
      case "weak-signature": {
        const weak = cert.chain.find((e) => !e.selfSigned && isWeakSignature(e.signatureAlgorithm));
        if (weak && !isWeakSignature(cert.signatureAlgorithm)) {
          predicates.push(`has an intermediate certificate (${weak.subject}) signed with a weak algorithm (${weak.signatureAlgorithm})`);
        } else {
          predicates.push(`is signed with a weak algorithm (${cert.signatureAlgorithm})`);
        }
        break;
      }
      case "weak-key": {
        const inChain = isWeakKey(cert.publicKey, params) ? undefined : cert.chain.find((e) => isWeakKey(e.publicKey, params));
        const key = inChain ? inChain.publicKey : cert.publicKey;
        let text;
        if (key.kind === "rsa") text = `has a weak key (RSA, ${key.bits} bits; at least ${params["min-rsa-bits"]} are required)`;
        else if (key.kind === "dsa") text = "has a deprecated DSA key";
        else text = `has a weak key (EC, ${key.bits} bits${key.curve !== undefined && key.curve !== null ? ", " + key.curve : ""}; at least 256 are required)`;
        predicates.push(inChain ? `has an intermediate certificate (${inChain.subject}) that ${text}` : text);
        break;
      }
      case "self-signed": predicates.push("is self-signed"); break;
      case "untrusted-chain": {
        const path = cert.path;
        const chain = cert.chainStatus;
        if (path.tag === "incomplete" || chain.tag === "incomplete") {
          predicates.push(`has an incomplete chain (${path.tag === "incomplete" ? path.val : chain.val})`);
        } else if (path.tag === "untrusted" || path.tag === "invalid") {
          predicates.push(`is not trusted (${path.val})`);
        } else if (chain.tag === "untrusted") {
          predicates.push(`is not trusted (${chain.val})`);
        } else {
          predicates.push("is not trusted");
        }
        break;
      }
      case "hostname-mismatch": predicates.push(`does not cover the hostname ${facts.hostname}`); break;
      case "expiring-soon": {
        const first = intermediateExpiringFirst(cert);
        if (first !== null) {
          predicates.push(`is served with an intermediate certificate (${first.subject}) that expires in `
            + `${formatDuration(first.notAfter - now)} (on ${formatTime(first.notAfter)}), before the certificate itself`);
        } else {
          predicates.push(`expires in ${formatDuration(cert.notAfter - now)} (on ${formatTime(cert.notAfter)})`);
        }
        break;
      }
      case "renewal-window": {
        const url = cert.renewalWindow ? cert.renewalWindow.explanationUrl : undefined;
        predicates.push(url !== undefined && url !== null
          ? `is due for renewal according to its CA's renewal information (see ${url})`
          : "is due for renewal according to its CA's renewal information");
        break;
      }
      default: break;
    }
  }
  if (predicates.length > 0) clauses.push("the certificate " + joinAnd(predicates));
  return `Service ${name}: ` + clauses.join("; ");
}

function sideNotices(service) {
  const notices = [];
  const name = service.name;
  const state = service.certificate;
  if (state.tag === "ok" && state.val.revocation.tag === "unknown") {
    notices.push({ level: "warning", service: name, message: `Service ${name}: the revocation status of the certificate `
      + `could not be checked (${state.val.revocation.val}). It is not treated as revoked.` });
  }
  for (const served of service.served) {
    if (served.matchesInstalled) continue;
    const message = served.sha256Fingerprint !== undefined && served.sha256Fingerprint !== null
      ? `Service ${name}: ${served.endpoint} serves a different certificate than the installed one. Reload or restart `
        + "the service so that it uses the installed certificate."
      : `Service ${name}: ${served.endpoint} could not be checked (${served.error ?? "no certificate was served"}), so it `
        + "may not serve the installed certificate. Make sure the service is running and reload it.";
    notices.push({ level: "warning", service: name, message });
  }
  return notices;
}

function evaluate(facts) {
  const [params, notices] = parseParams(facts.params);
  const disabled = facts.disableServiceCertificateManagement;
  if (disabled) {
    notices.push({ level: "info", service: undefined, message: "Service certificate management is disabled "
      + "(disable_service_certificate_management): no service certificate is replaced automatically, and expired or "
      + "expiring ones are not reported." });
  }
  const plans = [];
  for (const service of facts.services) {
    const reasons = serviceReasons(service, facts.now, params);
    const level = reasons.some((r) => UNUSABLE.has(r)) ? "error" : "warning";
    const described = describe(service, reasons, facts, params);
    const group = service.group ?? HOSTNAME_GROUP;
    const whyNot = whyNotOrderGroup(facts, group);
    let decision;
    let notice = null;
    if (service.checkOnly) {
      decision = "keep";
      if (reasons.length > 0) notice = [level, `${described}. It is only checked here (check-only): replace it where its key lives.`];
    } else if (disabled) {
      decision = "keep";
      if (!reasons.every((r) => ABOUT_EXPIRY.has(r))) {
        notice = [level, `${described}. It is kept, because service certificate management is disabled `
          + "(disable_service_certificate_management)."];
      }
    } else {
      decision = decide(reasons, whyNot === null);
      const host = groupMainName(facts, group);
      const why = whyNot !== null ? whyNot[0] : "";
      if (decision === "replace") {
        notice = [reasons.every((r) => ROUTINE.has(r)) ? "info" : "warning",
          `${described}. A new certificate for ${host} is requested from the CA and will replace it once issued.`];
      } else if (decision === "replace-or-placeholder") {
        notice = ["error", `${described}. A new certificate for ${host} is requested from the CA and will replace it `
          + "if issued in this run; otherwise a self-signed placeholder is installed."];
      } else if (decision === "placeholder") {
        notice = ["error", `${described}. It is replaced by a self-signed placeholder, because no certificate for `
          + `${host} can be ordered: ${why}.`];
      } else if (reasons.length > 0) {
        notice = ["warning", `${described}. It is kept, because no certificate for ${host} can be ordered: ${why}.`];
      }
      const defectKept = decision === "keep" && reasons.length > 0;
      if (whyNot !== null && whyNot[1] && (decision === "placeholder" || defectKept)) reasons.push("hostname-not-on-this-server");
    }
    if (notice !== null) notices.push({ level: notice[0], service: service.name, message: notice[1] });
    notices.push(...sideNotices(service));
    plans.push({ service: service.name, decision, reasons: reasons.map((tag) => ({ tag })) });
  }
  const orders = [];
  if (!disabled) {
    for (const g of facts.groups) {
      if (whyNotOrderGroup(facts, g.name) !== null) continue;
      const wanted = facts.services.some((service, i) => !service.checkOnly
        && (service.group ?? HOSTNAME_GROUP) === g.name
        && (plans[i].decision === "replace" || plans[i].decision === "replace-or-placeholder"));
      if (wanted) orders.push({ group: g.name });
    }
  }
  return { services: plans, orders, notices };
}

export const rules = {
  metadata() {
    return { name: "default-javascript", version: "0.2.0",
      description: "The default policy's rules (policy-wasm/README.md), in JavaScript (componentize-js)",
      contractVersion: "0.2.0" };
  },
  evaluate,
};
