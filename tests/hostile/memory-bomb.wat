;; evaluate grows its memory without end: the store's memory limit must stop it.
(module
  (memory (export "memory") 1)
  ;; PRELUDE
  (func (export "checkallsslcerts:policy/rules@0.1.0#evaluate") (param i32) (result i32)
    (loop $more
      (drop (memory.grow (i32.const 256)))
      (br $more))
    (unreachable)))
