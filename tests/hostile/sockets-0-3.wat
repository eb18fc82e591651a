;; A component that imports WASI sockets of a version the policy's WASI does not offer (0.3):
;; refused by name like any other import outside the list.
(component
  (import "wasi:sockets/tcp@0.3.0-rc-2025-09-16" (instance))
  (instance $rules)
  (export "checkallsslcerts:policy/rules@0.2.0" (instance $rules)))
