// Package braid holds what the gateway binary carries with it: the default
// configuration, used when no -config file is given and ./gateway.yaml does
// not exist. The gateway itself lives in the packages below this one; see
// README.md.
package braid

import _ "embed"

// DefaultConfig is the repository's gateway.yaml, embedded at build time.
//
//go:embed gateway.yaml
var DefaultConfig []byte
