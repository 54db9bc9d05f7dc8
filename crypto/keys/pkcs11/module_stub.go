//go:build !(pkcs11 && cgo)

package pkcs11

import "errors"

// Supported reports whether this build can load PKCS#11 modules.
const Supported = false

// errUnsupported says how to get a build that loads PKCS#11 modules.
var errUnsupported = errors.New("pkcs11: this s3seal was built without PKCS#11 support (the default build is static and cannot load a vendor's library); use the HSM build, s3seal-hsm, made with CGO_ENABLED=1 go build -tags pkcs11 (see README, \"PKCS#11\")")

func loadToken(string, string, *uint) (Token, error) { return nil, errUnsupported }
