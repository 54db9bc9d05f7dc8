package pkcs11

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
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
	// ignored; group or others must have no access to it), or PinEnv an
	// environment variable holding it. Exactly one is required.
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
		f, err := os.Open(s.PinFile)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: pkcs11.pin_file: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("pkcs11: pkcs11.pin_file: %w", err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("pkcs11: PIN file %s has mode %04o, so group or others can read it; run chmod 600 %s", s.PinFile, fi.Mode().Perm(), s.PinFile)
		}
		b := make([]byte, 256)
		n, _ := f.Read(b)
		pin := bytes.TrimRight(b[:n], "\r\n")
		out := append([]byte(nil), pin...)
		clear(b)
		if len(out) == 0 {
			return nil, fmt.Errorf("pkcs11: PIN file %s is empty", s.PinFile)
		}
		return out, nil
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
