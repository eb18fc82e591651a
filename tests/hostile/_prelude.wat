;; Shared by the core-module hostile policies: memory, a bump allocator, and a `metadata` export.
;; The test harness splices this in where a module says `;; PRELUDE`, embeds the contract's
;; world (wit-component) and encodes the module as a component, exactly as a real policy is built.
  (global $heap (mut i32) (i32.const 0x8000))
  (func $realloc (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (block $done
      (loop $grow
        (br_if $done (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $ptr))
  ;; metadata: record { name, version, description, contract-version } of four strings.
  (data (i32.const 0x100) "hostile0.0.1a hostile test module0.1.0")
  (data (i32.const 0x200)
    "\00\01\00\00" "\07\00\00\00"   ;; name = "hostile"
    "\07\01\00\00" "\05\00\00\00"   ;; version = "0.0.1"
    "\0c\01\00\00" "\15\00\00\00"   ;; description = "a hostile test module"
    "\21\01\00\00" "\05\00\00\00")  ;; contract-version = "0.1.0"
  (func (export "checkallsslcerts:policy/rules@0.1.0#metadata") (result i32)
    (i32.const 0x200))
