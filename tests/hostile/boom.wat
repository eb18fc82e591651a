;; A policy that passes the contract conformance suite, so `policy install` accepts it, and then
;; fails at run time: evaluate traps as soon as a service is named `boom`. Otherwise it keeps
;; every usable certificate and asks for a placeholder for every unusable one (missing,
;; unreadable, malformed, expired, or a key that is mismatched, missing, unreadable or
;; malformed), with no reasons, no order and no notices.
;;
;; Canonical ABI layout of contract 0.1.0 (wit/since_v0.1.0/policy.wit) used here:
;;   host-facts (size 128, align 8): now s64 @0, services list<service-facts> @120 (ptr, len)
;;   service-facts (size 240, align 8): name string @0, certificate-state @8 (discriminant u8;
;;     0 = ok, payload `certificate` @16), key-status @216 (discriminant u8: 0 matches,
;;     1 mismatch, 2 missing, 3 unreadable, 4 malformed, 5 not-checked)
;;   certificate: not-after s64 @80 (so @96 from the service)
;;   result<plan, string> (size 24): discriminant u8 @0, plan @4:
;;     services list<service-plan> @4 (ptr, len), order-hostname-certificate bool @12,
;;     notices list<notice> @16 (ptr, len)
;;   service-plan (size 20, align 4): service string @0, decision u8 @8 (0 keep, 3 placeholder),
;;     reasons list<reason> @12
;; A wrong offset here makes the contract suite fail, so the layout is checked by the tests.
(module
  (memory (export "memory") 1)
  ;; PRELUDE
  (func (export "checkallsslcerts:policy/rules@0.1.0#evaluate") (param $facts i32) (result i32)
    (local $services i32) (local $count i32) (local $i i32) (local $svc i32)
    (local $out i32) (local $plans i32) (local $plan i32) (local $decision i32) (local $key i32)
    (local.set $services (i32.load offset=120 (local.get $facts)))
    (local.set $count (i32.load offset=124 (local.get $facts)))
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
    (local.set $plans
      (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.mul (local.get $count) (i32.const 20))))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $svc (i32.add (local.get $services) (i32.mul (local.get $i) (i32.const 240))))
        ;; A service named `boom` makes the module trap.
        (if (i32.eq (i32.load offset=4 (local.get $svc)) (i32.const 4))
          (then
            (if (i32.eq (i32.load align=1 (i32.load (local.get $svc))) (i32.const 0x6d6f6f62))
              (then unreachable))))
        (local.set $decision (i32.const 0))
        (if (i32.ne (i32.load8_u offset=8 (local.get $svc)) (i32.const 0))
          (then (local.set $decision (i32.const 3)))
          (else
            (if (i64.ge_s (i64.load (local.get $facts)) (i64.load offset=96 (local.get $svc)))
              (then (local.set $decision (i32.const 3))))))
        (local.set $key (i32.load8_u offset=216 (local.get $svc)))
        (if (i32.and (i32.ge_u (local.get $key) (i32.const 1)) (i32.le_u (local.get $key) (i32.const 4)))
          (then (local.set $decision (i32.const 3))))
        (local.set $plan (i32.add (local.get $plans) (i32.mul (local.get $i) (i32.const 20))))
        (i32.store (local.get $plan) (i32.load (local.get $svc)))
        (i32.store offset=4 (local.get $plan) (i32.load offset=4 (local.get $svc)))
        (i32.store8 offset=8 (local.get $plan) (local.get $decision))
        (i32.store offset=12 (local.get $plan) (i32.const 0))
        (i32.store offset=16 (local.get $plan) (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i32.store8 (local.get $out) (i32.const 0))
    (i32.store offset=4 (local.get $out) (local.get $plans))
    (i32.store offset=8 (local.get $out) (local.get $count))
    (i32.store8 offset=12 (local.get $out) (i32.const 0))
    (i32.store offset=16 (local.get $out) (i32.const 0))
    (i32.store offset=20 (local.get $out) (i32.const 0))
    (local.get $out)))
