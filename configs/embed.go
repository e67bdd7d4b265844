// Package configs holds the example configuration files. They are embedded
// so that `consentd demo` runs the shipped default policy with nothing on
// disk. Owns no logic; imports nothing of consentd.
package configs

import _ "embed"

// Policy is configs/policy.yaml.
//
//go:embed policy.yaml
var Policy []byte
