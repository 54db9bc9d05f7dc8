package pkcs11

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/s3seal/s3seal/crypto/keys/internal/secretfile"
)

// Settings are the configuration file's pkcs11 section.
type Settings struct {
	// Module is the path of the vendor's PKCS#11 library. Required.
	Module string
	// TokenLabel names the token; Slot (when TokenLabel is empty) names
	// its slot instead.
	TokenLabel string
	Slot       *uint
	// PinFile is a file holding the user PIN (a trailing newline is
	// ignored; it must be a regular file owned by s3seal's user that group
	// and others cannot access), or PinEnv an environment variable holding
	// it. Exactly one is required.
	PinFile string
	PinEnv  string
	// Sessions bounds the sessions open at once (Config.Sessions).
	Sessions int
}

// Open loads the module, finds the token, logs in and finds the keys
// labelled labels (the active one first). lookupEnv reads PinEnv (nil:
// os.LookupEnv).
func Open(s Settings, labels []string, lookupEnv func(string) (string, bool)) (*Provider, error) {
	if s.Module == "" {
		return nil, errors.New("pkcs11: pkcs11.module is not set (the path of the token's PKCS#11 library)")
	}
	if s.TokenLabel == "" && s.Slot == nil {
		return nil, errors.New("pkcs11: set pkcs11.token_label (or pkcs11.slot)")
	}
	pin, err := readPIN(s, lookupEnv)
	if err != nil {
		return nil, err
	}
	defer clear(pin)
	tok, err := loadToken(s.Module, s.TokenLabel, s.Slot)
	if err != nil {
		return nil, err
	}
	p, err := New(tok, Config{Labels: labels, PIN: pin, Sessions: s.Sessions})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func readPIN(s Settings, lookupEnv func(string) (string, bool)) ([]byte, error) {
	switch {
	case s.PinFile != "" && s.PinEnv != "":
		return nil, errors.New("pkcs11: set one of pkcs11.pin_file and pkcs11.pin_env, not both")
	case s.PinFile != "":
		b, err := secretfile.Read(s.PinFile, 256, "PIN file")
		if err != nil {
			return nil, fmt.Errorf("pkcs11: pkcs11.pin_file: %w", err)
		}
		pin := append([]byte(nil), bytes.TrimRight(b, "\r\n")...)
		clear(b)
		if len(pin) == 0 {
			return nil, fmt.Errorf("pkcs11: PIN file %s is empty", s.PinFile)
		}
		return pin, nil
	case s.PinEnv != "":
		if lookupEnv == nil {
			lookupEnv = os.LookupEnv
		}
		v, ok := lookupEnv(s.PinEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("pkcs11: environment variable %s (pkcs11.pin_env) is not set", s.PinEnv)
		}
		return []byte(v), nil
	}
	return nil, errors.New("pkcs11: set pkcs11.pin_file or pkcs11.pin_env to give the token's user PIN")
}
