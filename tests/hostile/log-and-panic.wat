;; Like boom.wat (it keeps every usable certificate and asks for a placeholder for every
;; unusable one), but it talks: every evaluate first writes two `host.log` lines at level info
;; (one holding a newline and a forged "error:" line, which the host must show escaped). When a
;; service is named `boom` it then does what a Rust policy's panic hook does: a warning line,
;; the panic message at level error, and the trap (`unreachable`) — the host must keep that
;; message in its failure, without a wasm backtrace.
;;
;; `host.log(level, message)` lowers to (level: i32 — 0 info, 1 warning, 2 error —, ptr, len).
(module
  (import "checkallsslcerts:policy/host@0.1.0" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  ;; PRELUDE
  (data (i32.const 0x400) "the policy looked at every service")
  (data (i32.const 0x440) "a line with a newline\0aerror: FORGED by the policy")
  (data (i32.const 0x480) "about to fail")
  (data (i32.const 0x4c0) "panicked at src/lib.rs:7:9:\0aservice `boom` is not allowed")
  (func (export "checkallsslcerts:policy/rules@0.1.0#evaluate") (param $facts i32) (result i32)
    (local $services i32) (local $count i32) (local $i i32) (local $svc i32)
    (local $out i32) (local $plans i32) (local $plan i32) (local $decision i32) (local $key i32)
    (call $log (i32.const 0) (i32.const 0x400) (i32.const 34))
    (call $log (i32.const 0) (i32.const 0x440) (i32.const 49))
    (local.set $services (i32.load offset=120 (local.get $facts)))
    (local.set $count (i32.load offset=124 (local.get $facts)))
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
    (local.set $plans
      (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.mul (local.get $count) (i32.const 20))))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $svc (i32.add (local.get $services) (i32.mul (local.get $i) (i32.const 240))))
        ;; A service named `boom`: the panic hook's lines, then the trap.
        (if (i32.eq (i32.load offset=4 (local.get $svc)) (i32.const 4))
          (then
            (if (i32.eq (i32.load align=1 (i32.load (local.get $svc))) (i32.const 0x6d6f6f62))
              (then
                (call $log (i32.const 1) (i32.const 0x480) (i32.const 13))
                (call $log (i32.const 2) (i32.const 0x4c0) (i32.const 57))
                unreachable))))
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
