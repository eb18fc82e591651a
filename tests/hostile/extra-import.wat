;; A component that claims the contract but also imports the filesystem.
(component
  (import "wasi:filesystem/types@0.2.0" (instance))
  (instance $rules)
  (export "checkallsslcerts:policy/rules@0.1.0" (instance $rules)))
