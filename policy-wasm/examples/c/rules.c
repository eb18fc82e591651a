// The default policy's rules (policy-wasm/README.md), in C (C17), for wit-bindgen's C generator.
//
// A port of policy-wasm/src/rules.rs: the same decisions, reasons, orders and notices for the
// same facts (tests/policy_languages.rs checks it on every conformance vector and on random
// facts). `wit-bindgen c --world policy wit/since_v0.2.0` generates policy.h / policy.c, which
// map the contract to C: records are structs, variants are `{tag, val}` unions, enums are
// `uint8_t` constants, options are `{is_some, val}`, strings are `{ptr, len}` (UTF-8, not
// NUL-terminated) and `s64` timestamps are `int64_t`.
//
// Memory (see README.md): `evaluate` owns the facts it is given and frees them before it returns;
// every string and list of the returned plan (and of `metadata`) is allocated with malloc here
// and freed by the generated post-return function after the host has read it. An allocation
// that fails ends the call: the policy logs why through `host.log` and traps (`abort`), as the
// Rust default aborts; the host then falls back.
//
// As in rules.rs, no timestamp the host can send (the whole `s64` range) overflows: differences
// of timestamps are kept in 128 bits, and every division is on a 64-bit value the rules bound.

#include "policy.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Differences of two timestamps need 65 bits: they are kept in 128 bits, which are only added,
// subtracted, negated and compared. Every division is done in 64 bits, on values the rules bound
// (Debian's compiler-rt builds the 128-bit remainder helpers with a stack protector that
// wasi-libc does not provide, so they must not be linked in).
__extension__ typedef __int128 i128;

typedef policy_string_t wstr;
typedef checkallsslcerts_policy_types_host_facts_t host_facts_t;
typedef checkallsslcerts_policy_types_service_facts_t service_t;
typedef checkallsslcerts_policy_types_certificate_t cert_t;
typedef checkallsslcerts_policy_types_chain_element_t chain_element_t;
typedef checkallsslcerts_policy_types_public_key_t public_key_t;
typedef checkallsslcerts_policy_types_group_facts_t group_t;
typedef checkallsslcerts_policy_types_renewal_window_t window_t;
typedef checkallsslcerts_policy_types_notice_t notice_t;
typedef checkallsslcerts_policy_types_service_plan_t service_plan_t;
typedef checkallsslcerts_policy_types_order_request_t order_t;
typedef checkallsslcerts_policy_types_plan_t plan_t;
typedef checkallsslcerts_policy_types_reason_t reason_t;
typedef uint8_t level_t;
typedef uint8_t decision_t;

#define DAY ((int64_t)86400)
#define HOSTNAME_GROUP "hostname"

// Reasons, levels, decisions and variant tags, shorter.
#define R_WEAK_SIGNATURE CHECKALLSSLCERTS_POLICY_TYPES_REASON_WEAK_SIGNATURE
#define R_WEAK_KEY CHECKALLSSLCERTS_POLICY_TYPES_REASON_WEAK_KEY
#define R_REVOKED CHECKALLSSLCERTS_POLICY_TYPES_REASON_REVOKED
#define R_SELF_SIGNED CHECKALLSSLCERTS_POLICY_TYPES_REASON_SELF_SIGNED
#define R_UNTRUSTED_CHAIN CHECKALLSSLCERTS_POLICY_TYPES_REASON_UNTRUSTED_CHAIN
#define R_HOSTNAME_MISMATCH CHECKALLSSLCERTS_POLICY_TYPES_REASON_HOSTNAME_MISMATCH
#define R_HOSTNAME_NOT_ON_THIS_SERVER CHECKALLSSLCERTS_POLICY_TYPES_REASON_HOSTNAME_NOT_ON_THIS_SERVER
#define R_EXPIRED CHECKALLSSLCERTS_POLICY_TYPES_REASON_EXPIRED
#define R_EXPIRING_SOON CHECKALLSSLCERTS_POLICY_TYPES_REASON_EXPIRING_SOON
#define R_NOT_YET_VALID CHECKALLSSLCERTS_POLICY_TYPES_REASON_NOT_YET_VALID
#define R_KEY_MISMATCH CHECKALLSSLCERTS_POLICY_TYPES_REASON_KEY_MISMATCH
#define R_MISSING CHECKALLSSLCERTS_POLICY_TYPES_REASON_MISSING
#define R_UNREADABLE CHECKALLSSLCERTS_POLICY_TYPES_REASON_UNREADABLE
#define R_MALFORMED CHECKALLSSLCERTS_POLICY_TYPES_REASON_MALFORMED
#define R_RENEWAL_WINDOW CHECKALLSSLCERTS_POLICY_TYPES_REASON_RENEWAL_WINDOW

#define L_INFO CHECKALLSSLCERTS_POLICY_TYPES_LEVEL_INFO
#define L_WARNING CHECKALLSSLCERTS_POLICY_TYPES_LEVEL_WARNING
#define L_ERROR CHECKALLSSLCERTS_POLICY_TYPES_LEVEL_ERROR

#define D_KEEP CHECKALLSSLCERTS_POLICY_TYPES_DECISION_KEEP
#define D_REPLACE CHECKALLSSLCERTS_POLICY_TYPES_DECISION_REPLACE
#define D_REPLACE_OR_PLACEHOLDER CHECKALLSSLCERTS_POLICY_TYPES_DECISION_REPLACE_OR_PLACEHOLDER
#define D_PLACEHOLDER CHECKALLSSLCERTS_POLICY_TYPES_DECISION_PLACEHOLDER

// ---- memory and text ---------------------------------------------------------------------------

// An allocation failed: say so in the policy's log and trap. The host reports the trap (quoting
// this line) and falls back.
static _Noreturn void out_of_memory(void) {
  static const char message[] = "the C policy ran out of memory";
  wstr line = {(uint8_t *)message, sizeof message - 1};
  checkallsslcerts_policy_host_log(L_ERROR, &line);
  abort();
}

// malloc(count × size), or NULL for a count of 0; traps on overflow or failure.
static void *alloc_array(size_t count, size_t size) {
  if (count == 0 || size == 0) return NULL;
  if (count > SIZE_MAX / size) out_of_memory();
  void *p = malloc(count * size);
  if (p == NULL) out_of_memory();
  return p;
}

// A growing text buffer. Its bytes become a plan's string (wstr) with `buf_take`.
typedef struct {
  char *ptr;
  size_t len;
  size_t cap;
} buf;

static void buf_reserve(buf *b, size_t extra) {
  if (extra > SIZE_MAX - b->len) out_of_memory();
  size_t need = b->len + extra;
  if (need <= b->cap) return;
  size_t cap = b->cap > 0 ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->ptr, cap);
  if (p == NULL) out_of_memory();
  b->ptr = p;
  b->cap = cap;
}

static void buf_bytes(buf *b, const void *bytes, size_t n) {
  if (n == 0) return;
  buf_reserve(b, n);
  memcpy(b->ptr + b->len, bytes, n);
  b->len += n;
}

static void buf_str(buf *b, const char *s) { buf_bytes(b, s, strlen(s)); }

static void buf_wstr(buf *b, const wstr *s) { buf_bytes(b, s->ptr, s->len); }

static void buf_buf(buf *b, const buf *other) { buf_bytes(b, other->ptr, other->len); }

static void buf_char(buf *b, char c) { buf_bytes(b, &c, 1); }

static void buf_uint(buf *b, uint64_t value) {
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + (int)(value % 10));
    value /= 10;
  } while (value != 0);
  while (n > 0) buf_char(b, digits[--n]);
}

// `value` in decimal, at least `width` characters wide, zero-padded after the sign (Rust's
// `{:0width$}`: -5 at width 4 is "-005").
static void buf_int_padded(buf *b, int64_t value, size_t width) {
  uint64_t magnitude = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
  size_t shown = value < 0 ? 2 : 1;
  for (uint64_t rest = magnitude / 10; rest != 0; rest /= 10) shown++;
  if (value < 0) buf_char(b, '-');
  for (; shown < width; shown++) buf_char(b, '0');
  buf_uint(b, magnitude);
}

// The buffer's bytes as a plan string, which the post-return function frees (an empty string
// has no allocation: the bindings free only strings with a length).
static wstr buf_take(buf *b) {
  wstr s = {NULL, 0};
  if (b->len > 0) {
    s.ptr = (uint8_t *)b->ptr;
    s.len = b->len;
  } else {
    free(b->ptr);
  }
  b->ptr = NULL;
  b->len = b->cap = 0;
  return s;
}

static void buf_free(buf *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

// A copy of a facts string, for the plan.
static wstr wstr_copy(const wstr *s) {
  buf b = {0};
  buf_wstr(&b, s);
  return buf_take(&b);
}

static wstr wstr_from(const char *s) {
  buf b = {0};
  buf_str(&b, s);
  return buf_take(&b);
}

static bool wstr_eq(const wstr *a, const wstr *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

static bool wstr_is(const wstr *a, const char *s) {
  size_t n = strlen(s);
  return a->len == n && (n == 0 || memcmp(a->ptr, s, n) == 0);
}

static uint8_t ascii_lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c; }

// Whether `len` bytes at `text` contain `needle` (lowercase ASCII), ASCII case-insensitively.
static bool contains_ascii_ci(const uint8_t *text, size_t len, const char *needle) {
  size_t n = strlen(needle);
  if (n > len) return false;
  for (size_t i = 0; i + n <= len; i++) {
    size_t j = 0;
    while (j < n && ascii_lower(text[i + j]) == (uint8_t)needle[j]) j++;
    if (j == n) return true;
  }
  return false;
}

// ---- parameters ---------------------------------------------------------------------------------

typedef struct {
  uint32_t letsencrypt_min_days;
  uint32_t other_min_days;
  uint32_t short_lifetime_percent;
  uint32_t min_rsa_bits;
} params_t;

static const params_t DEFAULT_PARAMS = {25, 3, 33, 2048};

typedef struct {
  const char *key;
  uint32_t min;
  uint32_t max;
  size_t offset;
} param_spec;

static const param_spec PARAM_SPECS[] = {
    {"letsencrypt-min-days", 0, 3650, offsetof(params_t, letsencrypt_min_days)},
    {"other-min-days", 0, 3650, offsetof(params_t, other_min_days)},
    {"short-lifetime-percent", 1, 99, offsetof(params_t, short_lifetime_percent)},
    {"min-rsa-bits", 512, 16384, offsetof(params_t, min_rsa_bits)},
};

static uint32_t *param_field(params_t *p, const param_spec *spec) {
  return (uint32_t *)((char *)p + spec->offset);
}

// The notices of a plan, growing.
typedef struct {
  notice_t *ptr;
  size_t len;
  size_t cap;
} notices_t;

static void push_notice(notices_t *notices, level_t level, const wstr *service, buf *message) {
  if (notices->len == notices->cap) {
    size_t cap = notices->cap > 0 ? notices->cap * 2 : 16;
    if (cap < notices->cap || cap > SIZE_MAX / sizeof(notice_t)) out_of_memory();
    notice_t *p = realloc(notices->ptr, cap * sizeof(notice_t));
    if (p == NULL) out_of_memory();
    notices->ptr = p;
    notices->cap = cap;
  }
  notice_t *n = &notices->ptr[notices->len++];
  n->level = level;
  n->service.is_some = service != NULL;
  if (service != NULL) n->service.val = wstr_copy(service);
  else n->service.val = (wstr){NULL, 0};
  n->message = buf_take(message);
}

// A value as Rust's `{:?}` writes a string: in double quotes, with `"`, `\`, tab, CR, LF and NUL
// escaped as `\"`, `\\`, `\t`, `\r`, `\n`, `\0`, other ASCII control characters as `\u{1b}`.
// Other characters are copied as they are (Rust also escapes non-printable Unicode).
static void buf_debug(buf *b, const wstr *value) {
  static const char hex[] = "0123456789abcdef";
  buf_char(b, '"');
  for (size_t i = 0; i < value->len; i++) {
    uint8_t c = value->ptr[i];
    switch (c) {
      case '"': buf_str(b, "\\\""); break;
      case '\\': buf_str(b, "\\\\"); break;
      case '\t': buf_str(b, "\\t"); break;
      case '\r': buf_str(b, "\\r"); break;
      case '\n': buf_str(b, "\\n"); break;
      case '\0': buf_str(b, "\\0"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          buf_str(b, "\\u{");
          if (c >= 0x10) buf_char(b, hex[c >> 4]);
          buf_char(b, hex[c & 0xf]);
          buf_char(b, '}');
        } else {
          buf_char(b, (char)c);
        }
    }
  }
  buf_char(b, '"');
}

// Reads `[policy.params]`: decimal integers (ASCII digits only) within range; anything else gives
// a warning naming the key, and the default. Unknown keys are ignored; the last entry of a key
// decides.
static params_t parse_params(const host_facts_t *facts, notices_t *notices) {
  params_t parsed = DEFAULT_PARAMS;
  for (size_t i = 0; i < facts->params.len; i++) {
    const wstr *key = &facts->params.ptr[i].f0;
    const wstr *value = &facts->params.ptr[i].f1;
    const param_spec *spec = NULL;
    for (size_t s = 0; s < sizeof PARAM_SPECS / sizeof PARAM_SPECS[0]; s++) {
      if (wstr_is(key, PARAM_SPECS[s].key)) {
        spec = &PARAM_SPECS[s];
        break;
      }
    }
    if (spec == NULL) continue;
    params_t defaults = DEFAULT_PARAMS;
    uint32_t fallback = *param_field(&defaults, spec);
    bool digits = value->len > 0;
    bool too_large = false;
    uint64_t n = 0;
    for (size_t j = 0; j < value->len && digits; j++) {
      uint8_t c = value->ptr[j];
      if (c < '0' || c > '9') {
        digits = false;
      } else if (!too_large) {
        n = n * 10 + (uint64_t)(c - '0');
        if (n > UINT32_MAX) too_large = true;
      }
    }
    if (digits && !too_large && n >= spec->min && n <= spec->max) {
      *param_field(&parsed, spec) = (uint32_t)n;
      continue;
    }
    *param_field(&parsed, spec) = fallback;
    buf message = {0};
    buf_str(&message, "Policy parameter ");
    buf_str(&message, spec->key);
    buf_str(&message, " = ");
    buf_debug(&message, value);
    if (!digits) {
      buf_str(&message, " is not a decimal integer");
    } else {
      // All digits but out of range, or too large for a u32: out of range as well.
      buf_str(&message, " is out of range (");
      buf_uint(&message, spec->min);
      buf_str(&message, " to ");
      buf_uint(&message, spec->max);
      buf_str(&message, ")");
    }
    buf_str(&message, "; the default ");
    buf_uint(&message, fallback);
    buf_str(&message, " is used instead.");
    push_notice(notices, L_WARNING, NULL, &message);
  }
  return parsed;
}

// ---- certificates -------------------------------------------------------------------------------

// Whether the issuer organisation contains "let's encrypt", case-insensitively. Rust lowercases
// all of Unicode; ASCII is enough here, as no non-ASCII character lowercases to a letter of
// "let's encrypt" (only U+212A and U+0130 lowercase to ASCII: "k" and "i" + a combining dot).
static bool is_lets_encrypt(const cert_t *cert) {
  return cert->issuer_org.is_some &&
         contains_ascii_ci(cert->issuer_org.val.ptr, cert->issuer_org.val.len, "let's encrypt");
}

// Rust's `div_euclid` by a positive divisor: rounded towards minus infinity.
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b < 0) ? q - 1 : q;
}

// Rust's `rem_euclid` by a positive divisor: in [0, b).
static int64_t floor_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return r < 0 ? r + b : r;
}

// The expiring-soon threshold in seconds: the issuer's days, or for a lifetime under twice that,
// `lifetime × short-lifetime-percent / 100` rounded down.
static i128 expiring_soon_threshold(const cert_t *cert, const params_t *params) {
  uint32_t days = is_lets_encrypt(cert) ? params->letsencrypt_min_days : params->other_min_days;
  int64_t base = (int64_t)days * DAY;  // days <= 3650: at most 315,360,000
  i128 lifetime = (i128)cert->not_after - (i128)cert->not_before;
  if (lifetime >= 2 * (i128)base) return base;
  uint64_t percent = params->short_lifetime_percent;  // 1 to 99
  if (lifetime >= 0) {
    // lifetime < 2 × base <= 630,720,000, so the product fits easily.
    return (int64_t)((uint64_t)lifetime * percent / 100);
  }
  // Negative (not-after before not-before): -(ceil(m × percent / 100)) for m = -lifetime, with
  // m < 2^64; m = 100q + r gives ceil(m × percent / 100) = q × percent + ceil(r × percent / 100),
  // below 2^64.
  uint64_t m = (uint64_t)(-lifetime);
  uint64_t up = m / 100 * percent + (m % 100 * percent + 99) / 100;
  return -(i128)up;
}

static uint64_t fnv1a_64(const uint8_t *bytes, size_t len) {
  uint64_t hash = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < len; i++) hash = (hash ^ bytes[i]) * UINT64_C(0x00000100000001b3);
  return hash;
}

// `start + (FNV-1a-64(fingerprint) mod (end − start))`, or `start` if `end <= start`.
static int64_t renewal_point(const window_t *window, const wstr *fingerprint) {
  i128 length = (i128)window->end - (i128)window->start;
  if (length <= 0) return window->start;
  // 0 < length < 2^64.
  uint64_t offset = fnv1a_64(fingerprint->ptr, fingerprint->len) % (uint64_t)length;
  // start <= start + offset < end, so it fits an int64_t.
  return (int64_t)((i128)window->start + offset);
}

static bool is_weak_signature(const wstr *algorithm) {
  static const char *const weak[] = {"md2", "md4", "md5", "sha1"};
  for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
    if (contains_ascii_ci(algorithm->ptr, algorithm->len, weak[i])) return true;
  }
  return false;
}

static bool is_weak_public_key(const public_key_t *key, const params_t *params) {
  switch (key->kind) {
    case CHECKALLSSLCERTS_POLICY_TYPES_KEY_KIND_RSA: return key->bits < params->min_rsa_bits;
    case CHECKALLSSLCERTS_POLICY_TYPES_KEY_KIND_DSA: return true;
    case CHECKALLSSLCERTS_POLICY_TYPES_KEY_KIND_EC: return key->bits < 256;
    default: return false;
  }
}

// The first certificate of the chain whose signature clients check (not a root's
// self-signature) that is signed with a weak algorithm.
static const chain_element_t *weak_signature_in_chain(const cert_t *cert) {
  for (size_t i = 0; i < cert->chain.len; i++) {
    const chain_element_t *e = &cert->chain.ptr[i];
    if (!e->self_signed && is_weak_signature(&e->signature_algorithm)) return e;
  }
  return NULL;
}

static const chain_element_t *weak_key_in_chain(const cert_t *cert, const params_t *params) {
  for (size_t i = 0; i < cert->chain.len; i++) {
    if (is_weak_public_key(&cert->chain.ptr[i].public_key, params)) return &cert->chain.ptr[i];
  }
  return NULL;
}

// The served intermediate (from the files, not the trust store) that expires first, if before
// the leaf; the first of equals.
static const chain_element_t *intermediate_expiring_first(const cert_t *cert) {
  const chain_element_t *first = NULL;
  for (size_t i = 0; i < cert->chain.len; i++) {
    const chain_element_t *e = &cert->chain.ptr[i];
    if (e->source == CHECKALLSSLCERTS_POLICY_TYPES_CHAIN_SOURCE_FILE && !e->self_signed &&
        e->not_after < cert->not_after && (first == NULL || e->not_after < first->not_after)) {
      first = e;
    }
  }
  return first;
}

static int64_t effective_not_after(const cert_t *cert) {
  const chain_element_t *e = intermediate_expiring_first(cert);
  return e != NULL ? e->not_after : cert->not_after;
}

// ---- ordering -----------------------------------------------------------------------------------

enum why_not_kind {
  CAN_ORDER,
  AUTO_HOSTNAME_CERTIFICATE_DISABLED,
  NO_CERTIFICATE_AUTHORITY,
  HOSTNAME_NOT_FQDN,
  HOSTNAME_RESERVED_FOR_INTERNAL_USE,
  DNS_POINTS_ELSEWHERE,
  DNS_DOES_NOT_RESOLVE,
  CAA_FORBIDS,
  GROUP_NOT_ORDERABLE,
  UNKNOWN_GROUP,
};

// Why no certificate can be ordered for a group: the kind, and what its message names.
typedef struct {
  enum why_not_kind kind;
  const wstr *text;            // the hostname, the CAs CAA allows, or the unknown group's name
  const group_t *group;        // GROUP_NOT_ORDERABLE: the group, whose names are listed
} why_not_t;

static const char *const INTERNAL_SUFFIXES[] = {
    "localhost", "local", "invalid", "test", "example", "onion", "alt", "home.arpa",
    "internal", "localdomain", "lan", "corp", "home", "intranet", "private",
};

// Whether the hostname (trailing dots removed) has at least two labels, none empty, and ends in
// a suffix reserved for internal use (ASCII case-insensitively).
static bool reserved_for_internal_use(const wstr *hostname) {
  size_t len = hostname->len;
  while (len > 0 && hostname->ptr[len - 1] == '.') len--;
  const uint8_t *name = hostname->ptr;
  bool dot = false;
  for (size_t i = 0; i < len; i++) {
    if (name[i] == '.') {
      dot = true;
      if (i == 0 || name[i - 1] == '.') return false;  // an empty label
    }
  }
  if (!dot) return false;
  for (size_t s = 0; s < sizeof INTERNAL_SUFFIXES / sizeof INTERNAL_SUFFIXES[0]; s++) {
    const char *suffix = INTERNAL_SUFFIXES[s];
    size_t n = strlen(suffix);
    if (len < n + 1 || name[len - n - 1] != '.') continue;
    size_t j = 0;
    while (j < n && ascii_lower(name[len - n + j]) == (uint8_t)suffix[j]) j++;
    if (j == n) return true;
  }
  return false;
}

static bool has_acme(const host_facts_t *facts) { return facts->acme.is_some; }

// Whether a hostname certificate can be ordered: the first condition that fails.
static why_not_t why_not_order(const host_facts_t *facts) {
  why_not_t why = {CAN_ORDER, NULL, NULL};
  if (facts->disable_auto_hostname_certificate) {
    why.kind = AUTO_HOSTNAME_CERTIFICATE_DISABLED;
  } else if (!has_acme(facts)) {
    why.kind = NO_CERTIFICATE_AUTHORITY;
  } else if (!facts->hostname_is_fqdn && reserved_for_internal_use(&facts->hostname)) {
    why.kind = HOSTNAME_RESERVED_FOR_INTERNAL_USE;
    why.text = &facts->hostname;
  } else if (!facts->hostname_is_fqdn) {
    why.kind = HOSTNAME_NOT_FQDN;
  } else if (facts->hostname_dns == CHECKALLSSLCERTS_POLICY_TYPES_DNS_STATUS_POINTS_ELSEWHERE) {
    why.kind = DNS_POINTS_ELSEWHERE;
  } else if (facts->hostname_dns == CHECKALLSSLCERTS_POLICY_TYPES_DNS_STATUS_DOES_NOT_RESOLVE) {
    why.kind = DNS_DOES_NOT_RESOLVE;
  } else if (facts->caa.tag == CHECKALLSSLCERTS_POLICY_TYPES_CAA_STATUS_FORBIDS) {
    why.kind = CAA_FORBIDS;
    why.text = &facts->caa.val.forbids;
  }
  return why;
}

static const group_t *find_group(const host_facts_t *facts, const wstr *name) {
  for (size_t i = 0; i < facts->groups.len; i++) {
    if (wstr_eq(&facts->groups.ptr[i].name, name)) return &facts->groups.ptr[i];
  }
  return NULL;
}

// Whether a certificate can be ordered for a group: the "hostname" group is `why_not_order`;
// another needs a CA and names the CA can issue for.
static why_not_t why_not_order_group(const host_facts_t *facts, const wstr *group) {
  if (wstr_is(group, HOSTNAME_GROUP)) return why_not_order(facts);
  why_not_t why = {CAN_ORDER, NULL, NULL};
  const group_t *found = find_group(facts, group);
  if (found == NULL) {
    why.kind = UNKNOWN_GROUP;
    why.text = group;
  } else if (!has_acme(facts)) {
    why.kind = NO_CERTIFICATE_AUTHORITY;
  } else if (!found->orderable) {
    why.kind = GROUP_NOT_ORDERABLE;
    why.group = found;
  }
  return why;
}

// Failures 3–5 of the README make the server ineligible for a free certificate.
static bool makes_server_ineligible(const why_not_t *why) {
  switch (why->kind) {
    case HOSTNAME_NOT_FQDN:
    case HOSTNAME_RESERVED_FOR_INTERNAL_USE:
    case DNS_POINTS_ELSEWHERE:
    case DNS_DOES_NOT_RESOLVE:
    case CAA_FORBIDS: return true;
    default: return false;
  }
}

// The README's text for why no certificate can be ordered.
static void buf_why_not(buf *b, const why_not_t *why) {
  switch (why->kind) {
    case CAN_ORDER: break;
    case AUTO_HOSTNAME_CERTIFICATE_DISABLED:
      buf_str(b, "automatic hostname certificates are disabled (disable_auto_hostname_certificate)");
      break;
    case NO_CERTIFICATE_AUTHORITY: buf_str(b, "no certificate authority is configured"); break;
    case HOSTNAME_NOT_FQDN: buf_str(b, "the hostname is not a fully qualified domain name"); break;
    case HOSTNAME_RESERVED_FOR_INTERNAL_USE:
      buf_str(b, "the hostname ");
      buf_wstr(b, why->text);
      buf_str(b,
              " is a name reserved for internal use (RFC 6761/.internal); a public CA cannot issue "
              "for it; set [acme] public = false for a private CA");
      break;
    case DNS_POINTS_ELSEWHERE: buf_str(b, "the hostname does not resolve to this server's main IP"); break;
    case DNS_DOES_NOT_RESOLVE: buf_str(b, "the hostname does not resolve in DNS"); break;
    case CAA_FORBIDS:
      buf_str(b, "CAA records for the hostname do not allow the configured CA (allowed: ");
      buf_wstr(b, why->text);
      buf_str(b, ")");
      break;
    case GROUP_NOT_ORDERABLE:
      buf_str(b, "the configured CA cannot issue for the group's names (");
      for (size_t i = 0; i < why->group->names.len; i++) {
        if (i > 0) buf_str(b, ", ");
        buf_wstr(b, &why->group->names.ptr[i]);
      }
      buf_str(b, ")");
      break;
    case UNKNOWN_GROUP:
      buf_str(b, "the certificate group ");
      buf_wstr(b, why->text);
      buf_str(b, " is not known");
      break;
  }
}

// The name a group's certificate is for, in messages: its main name, or the hostname.
static const wstr *group_main_name(const host_facts_t *facts, const wstr *group) {
  const group_t *found = find_group(facts, group);
  return found != NULL && found->names.len > 0 ? &found->names.ptr[0] : &facts->hostname;
}

static const wstr HOSTNAME_GROUP_NAME = {(uint8_t *)HOSTNAME_GROUP, sizeof HOSTNAME_GROUP - 1};

// The service's group, "hostname" when it has none.
static const wstr *service_group(const service_t *service) {
  return service->group.is_some ? &service->group.val : &HOSTNAME_GROUP_NAME;
}

// ---- reasons and decisions ----------------------------------------------------------------------

// At most one of each reason but `missing`/`unreadable`/`malformed` (one of the three), and one
// `hostname-not-on-this-server`: 16 is more than enough.
#define MAX_REASONS 16

typedef struct {
  uint8_t tags[MAX_REASONS];
  size_t len;
} reasons_t;

static void push_reason(reasons_t *r, uint8_t tag) {
  if (r->len < MAX_REASONS) r->tags[r->len++] = tag;
}

// Every reason that applies to one service, in the order of the README's table. When the
// certificate is not `ok`, only its own reason is given.
static reasons_t service_reasons(const service_t *service, int64_t now, const params_t *params) {
  reasons_t reasons = {{0}, 0};
  switch (service->certificate.tag) {
    case CHECKALLSSLCERTS_POLICY_TYPES_CERTIFICATE_STATE_OK: break;
    case CHECKALLSSLCERTS_POLICY_TYPES_CERTIFICATE_STATE_MISSING: push_reason(&reasons, R_MISSING); return reasons;
    case CHECKALLSSLCERTS_POLICY_TYPES_CERTIFICATE_STATE_UNREADABLE:
      push_reason(&reasons, R_UNREADABLE);
      return reasons;
    default: push_reason(&reasons, R_MALFORMED); return reasons;
  }
  const cert_t *cert = &service->certificate.val.ok;
  switch (service->key.tag) {
    case CHECKALLSSLCERTS_POLICY_TYPES_KEY_STATUS_MISMATCH: push_reason(&reasons, R_KEY_MISMATCH); break;
    case CHECKALLSSLCERTS_POLICY_TYPES_KEY_STATUS_MISSING: push_reason(&reasons, R_MISSING); break;
    case CHECKALLSSLCERTS_POLICY_TYPES_KEY_STATUS_UNREADABLE: push_reason(&reasons, R_UNREADABLE); break;
    case CHECKALLSSLCERTS_POLICY_TYPES_KEY_STATUS_MALFORMED: push_reason(&reasons, R_MALFORMED); break;
    default: break;
  }
  bool leaf_expired = now >= cert->not_after;
  int64_t not_after = effective_not_after(cert);
  bool expired = now >= not_after;
  if (expired) push_reason(&reasons, R_EXPIRED);
  if (now < cert->not_before) push_reason(&reasons, R_NOT_YET_VALID);
  if (cert->revocation.tag == CHECKALLSSLCERTS_POLICY_TYPES_REVOCATION_REVOKED) push_reason(&reasons, R_REVOKED);
  if (is_weak_signature(&cert->signature_algorithm) || weak_signature_in_chain(cert) != NULL) {
    push_reason(&reasons, R_WEAK_SIGNATURE);
  }
  if (is_weak_public_key(&cert->public_key, params) || weak_key_in_chain(cert, params) != NULL) {
    push_reason(&reasons, R_WEAK_KEY);
  }
  if (cert->self_signed) push_reason(&reasons, R_SELF_SIGNED);
  // The path verdict leaves the leaf's own dates out; without one, the chain status is verified
  // at `now`, so a leaf outside its validity never verifies, which `expired`/`not-yet-valid`
  // already say. An expired intermediate is said by `expired` too.
  bool bad_chain;
  switch (cert->path.tag) {
    case CHECKALLSSLCERTS_POLICY_TYPES_PATH_STATUS_VALID: bad_chain = false; break;
    case CHECKALLSSLCERTS_POLICY_TYPES_PATH_STATUS_INVALID: bad_chain = !(expired && !leaf_expired); break;
    case CHECKALLSSLCERTS_POLICY_TYPES_PATH_STATUS_INCOMPLETE:
    case CHECKALLSSLCERTS_POLICY_TYPES_PATH_STATUS_UNTRUSTED: bad_chain = true; break;
    default: {
      bool outside_validity = leaf_expired || now < cert->not_before;
      uint8_t chain = cert->chain_status.tag;
      bad_chain = (chain == CHECKALLSSLCERTS_POLICY_TYPES_CHAIN_STATUS_UNTRUSTED ||
                   chain == CHECKALLSSLCERTS_POLICY_TYPES_CHAIN_STATUS_INCOMPLETE) &&
                  !outside_validity;
    }
  }
  if (bad_chain && !cert->self_signed) push_reason(&reasons, R_UNTRUSTED_CHAIN);
  if (!service->covers_hostname) push_reason(&reasons, R_HOSTNAME_MISMATCH);
  i128 left = (i128)not_after - (i128)now;
  if (!expired && left < expiring_soon_threshold(cert, params)) push_reason(&reasons, R_EXPIRING_SOON);
  if (cert->renewal_window.is_some && now >= renewal_point(&cert->renewal_window.val, &cert->sha256_fingerprint)) {
    push_reason(&reasons, R_RENEWAL_WINDOW);
  }
  return reasons;
}

// Whether the reason makes the certificate unusable (it must not stay installed).
static bool is_unusable(uint8_t reason) {
  switch (reason) {
    case R_MISSING:
    case R_UNREADABLE:
    case R_MALFORMED:
    case R_KEY_MISMATCH:
    case R_EXPIRED:
    case R_NOT_YET_VALID:
    case R_REVOKED: return true;
    default: return false;
  }
}

static bool is_about_expiry(uint8_t reason) {
  return reason == R_EXPIRED || reason == R_EXPIRING_SOON || reason == R_RENEWAL_WINDOW;
}

static bool is_routine(uint8_t reason) { return reason == R_EXPIRING_SOON || reason == R_RENEWAL_WINDOW; }

static bool any_reason(const reasons_t *r, bool (*test)(uint8_t)) {
  for (size_t i = 0; i < r->len; i++) {
    if (test(r->tags[i])) return true;
  }
  return false;
}

static bool all_reasons(const reasons_t *r, bool (*test)(uint8_t)) {
  for (size_t i = 0; i < r->len; i++) {
    if (!test(r->tags[i])) return false;
  }
  return true;
}

// The decision table (service certificate management enabled).
static decision_t decide(const reasons_t *reasons, bool order_possible) {
  if (reasons->len == 0) return D_KEEP;
  bool unusable = any_reason(reasons, is_unusable);
  if (order_possible) return unusable ? D_REPLACE_OR_PLACEHOLDER : D_REPLACE;
  return unusable ? D_PLACEHOLDER : D_KEEP;
}

// ---- messages -----------------------------------------------------------------------------------

// A duration for people: "24 days", "47 hours", "12 minutes", "30 seconds" (rounded down).
// `seconds` is a difference of two timestamps: below 2^64.
static void buf_duration(buf *b, i128 seconds) {
  uint64_t s = seconds < 0 ? 0 : (uint64_t)seconds;
  uint64_t n;
  const char *unit;
  if (s >= 2 * (uint64_t)DAY) {
    n = s / (uint64_t)DAY;
    unit = "day";
  } else if (s >= 2 * 3600) {
    n = s / 3600;
    unit = "hour";
  } else if (s >= 2 * 60) {
    n = s / 60;
    unit = "minute";
  } else {
    n = s;
    unit = "second";
  }
  buf_uint(b, n);
  buf_char(b, ' ');
  buf_str(b, unit);
  if (n != 1) buf_char(b, 's');
}

// A timestamp as "2025-06-15 14:30 UTC" (proleptic Gregorian calendar; Howard Hinnant's
// civil_from_days). Every intermediate fits 64 bits: |days| < 1.1e14, |year| < 3e11.
static void buf_time(buf *b, int64_t timestamp) {
  int64_t days = floor_div(timestamp, DAY);
  int64_t second_of_day = floor_mod(timestamp, DAY);
  int64_t z = days + 719468;
  int64_t era = floor_div(z, 146097);
  int64_t day_of_era = floor_mod(z, 146097);
  int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  int64_t mp = (5 * day_of_year + 2) / 153;
  int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  buf_int_padded(b, year, 4);
  buf_char(b, '-');
  buf_int_padded(b, month, 2);
  buf_char(b, '-');
  buf_int_padded(b, day, 2);
  buf_char(b, ' ');
  buf_int_padded(b, second_of_day / 3600, 2);
  buf_char(b, ':');
  buf_int_padded(b, second_of_day % 3600 / 60, 2);
  buf_str(b, " UTC");
}

// "Service nginx: the private key ...; the certificate has expired ... and is self-signed" (no
// final full stop). `hostname-not-on-this-server` is not described: the why-not-order text says
// it.
static void describe_reasons(buf *out, const service_t *service, const reasons_t *reasons,
                             const host_facts_t *facts, const params_t *params) {
  buf_str(out, "Service ");
  buf_wstr(out, &service->name);
  buf_str(out, ": ");
  switch (service->certificate.tag) {
    case CHECKALLSSLCERTS_POLICY_TYPES_CERTIFICATE_STATE_OK: break;
    case CHECKALLSSLCERTS_POLICY_TYPES_CERTIFICATE_STATE_MISSING:
      buf_str(out, "the certificate file is missing (");
      buf_wstr(out, &service->certificate.val.missing);
      buf_str(out, ")");
      return;
    case CHECKALLSSLCERTS_POLICY_TYPES_CERTIFICATE_STATE_UNREADABLE:
      buf_str(out, "the certificate file cannot be read (");
      buf_wstr(out, &service->certificate.val.unreadable);
      buf_str(out, ")");
      return;
    default:
      buf_str(out, "the certificate file holds no usable certificate (");
      buf_wstr(out, &service->certificate.val.malformed);
      buf_str(out, ")");
      return;
  }
  const cert_t *cert = &service->certificate.val.ok;
  i128 now = facts->now;
  size_t clauses = 0;  // clauses written to `out`, joined with "; "
  buf predicates[MAX_REASONS];
  size_t count = 0;
  for (size_t i = 0; i < reasons->len; i++) {
    uint8_t reason = reasons->tags[i];
    if (reason == R_MISSING || reason == R_UNREADABLE || reason == R_MALFORMED) {
      if (clauses++ > 0) buf_str(out, "; ");
      switch (service->key.tag) {
        case CHECKALLSSLCERTS_POLICY_TYPES_KEY_STATUS_MISSING:
          buf_str(out, "the private key file is missing (");
          buf_wstr(out, &service->key.val.missing);
          buf_str(out, ")");
          break;
        case CHECKALLSSLCERTS_POLICY_TYPES_KEY_STATUS_UNREADABLE:
          buf_str(out, "the private key file cannot be read (");
          buf_wstr(out, &service->key.val.unreadable);
          buf_str(out, ")");
          break;
        case CHECKALLSSLCERTS_POLICY_TYPES_KEY_STATUS_MALFORMED:
          buf_str(out, "the private key file holds no usable private key (");
          buf_wstr(out, &service->key.val.malformed);
          buf_str(out, ")");
          break;
        default: buf_str(out, "the private key file is not usable");
      }
      continue;
    }
    if (reason == R_KEY_MISMATCH) {
      if (clauses++ > 0) buf_str(out, "; ");
      buf_str(out, "the private key does not belong to the certificate");
      continue;
    }
    if (reason == R_HOSTNAME_NOT_ON_THIS_SERVER) continue;
    buf *p = &predicates[count++];
    *p = (buf){0};
    switch (reason) {
      case R_EXPIRED: {
        const chain_element_t *e = intermediate_expiring_first(cert);
        if (e != NULL && now < cert->not_after) {
          buf_str(p, "is served with an intermediate certificate (");
          buf_wstr(p, &e->subject);
          buf_str(p, ") that expired ");
          buf_duration(p, now - e->not_after);
          buf_str(p, " ago (on ");
          buf_time(p, e->not_after);
          buf_str(p, ")");
        } else {
          buf_str(p, "expired ");
          buf_duration(p, now - cert->not_after);
          buf_str(p, " ago (on ");
          buf_time(p, cert->not_after);
          buf_str(p, ")");
        }
        break;
      }
      case R_NOT_YET_VALID:
        buf_str(p, "is not valid before ");
        buf_time(p, cert->not_before);
        break;
      case R_REVOKED:
        if (cert->revocation.tag == CHECKALLSSLCERTS_POLICY_TYPES_REVOCATION_REVOKED) {
          buf_str(p, "was revoked by its CA on ");
          buf_time(p, cert->revocation.val.revoked.revoked_at);
          buf_str(p, " (reason: ");
          buf_wstr(p, &cert->revocation.val.revoked.reason);
          buf_str(p, ")");
        } else {
          buf_str(p, "was revoked by its CA");
        }
        break;
      case R_WEAK_SIGNATURE: {
        const chain_element_t *e = weak_signature_in_chain(cert);
        if (e != NULL && !is_weak_signature(&cert->signature_algorithm)) {
          buf_str(p, "has an intermediate certificate (");
          buf_wstr(p, &e->subject);
          buf_str(p, ") signed with a weak algorithm (");
          buf_wstr(p, &e->signature_algorithm);
          buf_str(p, ")");
        } else {
          buf_str(p, "is signed with a weak algorithm (");
          buf_wstr(p, &cert->signature_algorithm);
          buf_str(p, ")");
        }
        break;
      }
      case R_WEAK_KEY: {
        const chain_element_t *in_chain =
            is_weak_public_key(&cert->public_key, params) ? NULL : weak_key_in_chain(cert, params);
        const public_key_t *key = in_chain != NULL ? &in_chain->public_key : &cert->public_key;
        if (in_chain != NULL) {
          buf_str(p, "has an intermediate certificate (");
          buf_wstr(p, &in_chain->subject);
          buf_str(p, ") that ");
        }
        if (key->kind == CHECKALLSSLCERTS_POLICY_TYPES_KEY_KIND_RSA) {
          buf_str(p, "has a weak key (RSA, ");
          buf_uint(p, key->bits);
          buf_str(p, " bits; at least ");
          buf_uint(p, params->min_rsa_bits);
          buf_str(p, " are required)");
        } else if (key->kind == CHECKALLSSLCERTS_POLICY_TYPES_KEY_KIND_DSA) {
          buf_str(p, "has a deprecated DSA key");
        } else {
          buf_str(p, "has a weak key (EC, ");
          buf_uint(p, key->bits);
          buf_str(p, " bits");
          if (key->curve.is_some) {
            buf_str(p, ", ");
            buf_wstr(p, &key->curve.val);
          }
          buf_str(p, "; at least 256 are required)");
        }
        break;
      }
      case R_SELF_SIGNED: buf_str(p, "is self-signed"); break;
      case R_UNTRUSTED_CHAIN: {
        const checkallsslcerts_policy_types_path_status_t *path = &cert->path;
        const checkallsslcerts_policy_types_chain_status_t *chain = &cert->chain_status;
        /* The first of: an incomplete path or chain, then an untrusted or invalid path, then an
           untrusted chain; with its reason in brackets. */
        const char *what = "is not trusted";
        const wstr *why = NULL;
        if (path->tag == CHECKALLSSLCERTS_POLICY_TYPES_PATH_STATUS_INCOMPLETE) {
          what = "has an incomplete chain";
          why = &path->val.incomplete;
        } else if (chain->tag == CHECKALLSSLCERTS_POLICY_TYPES_CHAIN_STATUS_INCOMPLETE) {
          what = "has an incomplete chain";
          why = &chain->val.incomplete;
        } else if (path->tag == CHECKALLSSLCERTS_POLICY_TYPES_PATH_STATUS_UNTRUSTED) {
          why = &path->val.untrusted;
        } else if (path->tag == CHECKALLSSLCERTS_POLICY_TYPES_PATH_STATUS_INVALID) {
          why = &path->val.invalid;
        } else if (chain->tag == CHECKALLSSLCERTS_POLICY_TYPES_CHAIN_STATUS_UNTRUSTED) {
          why = &chain->val.untrusted;
        }
        buf_str(p, what);
        if (why) {
          buf_str(p, " (");
          buf_wstr(p, why);
          buf_str(p, ")");
        }
        break;
      }
      case R_HOSTNAME_MISMATCH:
        buf_str(p, "does not cover the hostname ");
        buf_wstr(p, &facts->hostname);
        break;
      case R_EXPIRING_SOON: {
        const chain_element_t *e = intermediate_expiring_first(cert);
        if (e != NULL) {
          buf_str(p, "is served with an intermediate certificate (");
          buf_wstr(p, &e->subject);
          buf_str(p, ") that expires in ");
          buf_duration(p, (i128)e->not_after - now);
          buf_str(p, " (on ");
          buf_time(p, e->not_after);
          buf_str(p, "), before the certificate itself");
        } else {
          buf_str(p, "expires in ");
          buf_duration(p, (i128)cert->not_after - now);
          buf_str(p, " (on ");
          buf_time(p, cert->not_after);
          buf_str(p, ")");
        }
        break;
      }
      case R_RENEWAL_WINDOW:
        buf_str(p, "is due for renewal according to its CA's renewal information");
        if (cert->renewal_window.is_some && cert->renewal_window.val.explanation_url.is_some) {
          buf_str(p, " (see ");
          buf_wstr(p, &cert->renewal_window.val.explanation_url.val);
          buf_str(p, ")");
        }
        break;
      default: count--; break;  // no other reason is given by service_reasons
    }
  }
  if (count > 0) {
    if (clauses > 0) buf_str(out, "; ");
    buf_str(out, "the certificate ");
    // "a", "a and b", "a, b and c".
    for (size_t i = 0; i < count; i++) {
      if (i > 0) buf_str(out, i + 1 == count ? " and " : ", ");
      buf_buf(out, &predicates[i]);
      buf_free(&predicates[i]);
    }
  }
}

// Notices that do not depend on the decision: revocation status unknown, and endpoints that do
// not serve the installed certificate.
static void side_notices(notices_t *notices, const service_t *service) {
  const wstr *name = &service->name;
  if (service->certificate.tag == CHECKALLSSLCERTS_POLICY_TYPES_CERTIFICATE_STATE_OK &&
      service->certificate.val.ok.revocation.tag == CHECKALLSSLCERTS_POLICY_TYPES_REVOCATION_UNKNOWN) {
    buf m = {0};
    buf_str(&m, "Service ");
    buf_wstr(&m, name);
    buf_str(&m, ": the revocation status of the certificate could not be checked (");
    buf_wstr(&m, &service->certificate.val.ok.revocation.val.unknown);
    buf_str(&m, "). It is not treated as revoked.");
    push_notice(notices, L_WARNING, name, &m);
  }
  for (size_t i = 0; i < service->served.len; i++) {
    const checkallsslcerts_policy_types_served_endpoint_t *served = &service->served.ptr[i];
    if (served->matches_installed) continue;
    buf m = {0};
    buf_str(&m, "Service ");
    buf_wstr(&m, name);
    buf_str(&m, ": ");
    buf_wstr(&m, &served->endpoint);
    if (served->sha256_fingerprint.is_some) {
      buf_str(&m,
              " serves a different certificate than the installed one. Reload or restart the "
              "service so that it uses the installed certificate.");
    } else {
      buf_str(&m, " could not be checked (");
      if (served->error.is_some) buf_wstr(&m, &served->error.val);
      else buf_str(&m, "no certificate was served");
      buf_str(&m,
              "), so it may not serve the installed certificate. Make sure the service is running "
              "and reload it.");
    }
    push_notice(notices, L_WARNING, name, &m);
  }
}

// ---- the plan -----------------------------------------------------------------------------------

static void evaluate(const host_facts_t *facts, plan_t *plan) {
  notices_t notices = {NULL, 0, 0};
  params_t params = parse_params(facts, &notices);
  bool management_disabled = facts->disable_service_certificate_management;
  if (management_disabled) {
    buf m = {0};
    buf_str(&m,
            "Service certificate management is disabled (disable_service_certificate_management): "
            "no service certificate is replaced automatically, and expired or expiring ones are not "
            "reported.");
    push_notice(&notices, L_INFO, NULL, &m);
  }

  size_t count = facts->services.len;
  service_plan_t *services = alloc_array(count, sizeof(service_plan_t));
  for (size_t i = 0; i < count; i++) {
    const service_t *service = &facts->services.ptr[i];
    reasons_t reasons = service_reasons(service, facts->now, &params);
    level_t level = any_reason(&reasons, is_unusable) ? L_ERROR : L_WARNING;
    const wstr *group = service_group(service);
    why_not_t why_not = why_not_order_group(facts, group);
    decision_t decision = D_KEEP;
    // Every notice below is about a service with reasons, so it is described only then.
    buf message = {0};
    bool notice = false;
    if (reasons.len > 0) describe_reasons(&message, service, &reasons, facts, &params);
    if (service->check_only) {
      // The host installs nothing into a check-only service: the admin is told.
      if (reasons.len > 0) {
        notice = true;
        buf_str(&message, ". It is only checked here (check-only): replace it where its key lives.");
      }
    } else if (management_disabled) {
      if (!all_reasons(&reasons, is_about_expiry)) {
        notice = true;
        buf_str(&message,
                ". It is kept, because service certificate management is disabled "
                "(disable_service_certificate_management).");
      }
    } else {
      decision = decide(&reasons, why_not.kind == CAN_ORDER);
      const wstr *host = group_main_name(facts, group);
      switch (decision) {
        case D_REPLACE:
          notice = true;
          level = all_reasons(&reasons, is_routine) ? L_INFO : L_WARNING;
          buf_str(&message, ". A new certificate for ");
          buf_wstr(&message, host);
          buf_str(&message, " is requested from the CA and will replace it once issued.");
          break;
        case D_REPLACE_OR_PLACEHOLDER:
          notice = true;
          level = L_ERROR;
          buf_str(&message, ". A new certificate for ");
          buf_wstr(&message, host);
          buf_str(&message,
                  " is requested from the CA and will replace it if issued in this run; otherwise a "
                  "self-signed placeholder is installed.");
          break;
        case D_PLACEHOLDER:
          notice = true;
          level = L_ERROR;
          buf_str(&message, ". It is replaced by a self-signed placeholder, because no certificate for ");
          buf_wstr(&message, host);
          buf_str(&message, " can be ordered: ");
          buf_why_not(&message, &why_not);
          buf_str(&message, ".");
          break;
        default:  // keep
          if (reasons.len > 0) {
            notice = true;
            level = L_WARNING;
            buf_str(&message, ". It is kept, because no certificate for ");
            buf_wstr(&message, host);
            buf_str(&message, " can be ordered: ");
            buf_why_not(&message, &why_not);
            buf_str(&message, ".");
          }
      }
      bool defect_kept = decision == D_KEEP && reasons.len > 0;
      if (why_not.kind != CAN_ORDER && makes_server_ineligible(&why_not) &&
          (decision == D_PLACEHOLDER || defect_kept)) {
        push_reason(&reasons, R_HOSTNAME_NOT_ON_THIS_SERVER);
      }
    }
    if (notice) push_notice(&notices, level, &service->name, &message);
    else buf_free(&message);
    side_notices(&notices, service);

    service_plan_t *sp = &services[i];
    sp->service = wstr_copy(&service->name);
    sp->decision = decision;
    sp->reasons.len = reasons.len;
    sp->reasons.ptr = alloc_array(reasons.len, sizeof(reason_t));
    for (size_t r = 0; r < reasons.len; r++) {
      sp->reasons.ptr[r].tag = reasons.tags[r];
      sp->reasons.ptr[r].val.other = (wstr){NULL, 0};
    }
  }

  // One order per group with a service to replace, in the groups' order.
  order_t *orders = NULL;
  size_t order_count = 0;
  if (!management_disabled) {
    orders = alloc_array(facts->groups.len, sizeof(order_t));
    for (size_t g = 0; g < facts->groups.len; g++) {
      const wstr *name = &facts->groups.ptr[g].name;
      if (why_not_order_group(facts, name).kind != CAN_ORDER) continue;
      bool wanted = false;
      for (size_t i = 0; i < count && !wanted; i++) {
        const service_t *service = &facts->services.ptr[i];
        decision_t d = services[i].decision;
        wanted = !service->check_only && wstr_eq(service_group(service), name) &&
                 (d == D_REPLACE || d == D_REPLACE_OR_PLACEHOLDER);
      }
      if (wanted) orders[order_count++].group = wstr_copy(name);
    }
    if (order_count == 0) {
      free(orders);
      orders = NULL;
    }
  }

  plan->services.ptr = services;
  plan->services.len = count;
  plan->orders.ptr = orders;
  plan->orders.len = order_count;
  plan->notices.ptr = notices.ptr;
  plan->notices.len = notices.len;
  if (notices.len == 0) {
    free(notices.ptr);
    plan->notices.ptr = NULL;
  }
}

// ---- the exports --------------------------------------------------------------------------------

void exports_checkallsslcerts_policy_rules_metadata(exports_checkallsslcerts_policy_rules_policy_metadata_t *ret) {
  // The post-return function frees these strings: they must be allocated, not literals.
  ret->name = wstr_from("default-c");
  ret->version = wstr_from("0.2.0");
  ret->description = wstr_from("The default policy's rules (policy-wasm/README.md), in C (wit-bindgen c, wasi-libc)");
  ret->contract_version = wstr_from("0.2.0");
}

bool exports_checkallsslcerts_policy_rules_evaluate(exports_checkallsslcerts_policy_rules_host_facts_t *facts,
                                                    exports_checkallsslcerts_policy_rules_plan_t *ret,
                                                    policy_string_t *err) {
  (void)err;  // the rules always give a plan
  evaluate(facts, ret);
  // The facts are the callee's to free; the plan copied what it needs.
  exports_checkallsslcerts_policy_rules_host_facts_free(facts);
  return true;
}
