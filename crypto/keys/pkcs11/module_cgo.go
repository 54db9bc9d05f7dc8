//go:build pkcs11 && cgo

package pkcs11

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// Supported reports whether this build can load PKCS#11 modules.
const Supported = true

// module is a loaded PKCS#11 library and the slot of the token in use.
type module struct {
	lib  *library
	path string
	ctx  *p11.Ctx
	slot uint
}

// library is one PKCS#11 library initialized in this process. A library
// is initialized once per process (C_Initialize, C_Finalize act on the
// whole process), so providers that use the same library, as the old and
// the new configuration do across a reload, share it; the last one to
// close finalizes it.
type library struct {
	ctx  *p11.Ctx
	refs int
}

// libraries holds the initialized libraries by path. It is process state
// by nature: the libraries themselves are.
var libraries = struct {
	sync.Mutex
	m map[string]*library
}{m: map[string]*library{}}

func openLibrary(path string) (*library, error) {
	libraries.Lock()
	defer libraries.Unlock()
	if l, ok := libraries.m[path]; ok {
		l.refs++
		return l, nil
	}
	ctx := p11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11: cannot load the PKCS#11 module %s (not a shared library, missing, or missing its dependencies)", path)
	}
	if err := ctx.Initialize(); err != nil {
		var e p11.Error
		if !errors.As(err, &e) || e != p11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			ctx.Destroy()
			return nil, wrapErr("C_Initialize", err)
		}
	}
	l := &library{ctx: ctx, refs: 1}
	libraries.m[path] = l
	return l, nil
}

func closeLibrary(path string, l *library) error {
	libraries.Lock()
	defer libraries.Unlock()
	l.refs--
	if l.refs > 0 {
		return nil
	}
	delete(libraries.m, path)
	err := l.ctx.Finalize()
	l.ctx.Destroy()
	return wrapErr("C_Finalize", err)
}

func wrapErr(fn string, err error) error {
	var e p11.Error
	if errors.As(err, &e) {
		return &Error{Func: fn, Code: uint(e)}
	}
	return err
}

// loadToken loads the module at path, initializes it and finds the token
// labelled tokenLabel, or the token in slot if tokenLabel is empty.
func loadToken(path, tokenLabel string, slot *uint) (Token, error) {
	lib, err := openLibrary(path)
	if err != nil {
		return nil, err
	}
	ctx := lib.ctx
	m := &module{lib: lib, ctx: ctx, path: path}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		m.Close()
		return nil, wrapErr("C_GetSlotList", err)
	}
	var labels []string
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		l := strings.TrimRight(ti.Label, " \x00")
		labels = append(labels, fmt.Sprintf("%q (slot %d)", l, s))
		if (tokenLabel != "" && l == tokenLabel) || (tokenLabel == "" && slot != nil && *slot == s) {
			m.slot = s
			return m, nil
		}
	}
	m.Close()
	want := fmt.Sprintf("token %q", tokenLabel)
	if tokenLabel == "" && slot != nil {
		want = fmt.Sprintf("a token in slot %d", *slot)
	}
	return nil, fmt.Errorf("pkcs11: %s not found in %s; tokens present: %s", want, path, strings.Join(labels, ", "))
}

func (m *module) OpenSession() (Session, error) {
	sh, err := m.ctx.OpenSession(m.slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		return nil, wrapErr("C_OpenSession", err)
	}
	return &p11session{ctx: m.ctx, sh: sh}, nil
}

func (m *module) Close() error { return closeLibrary(m.path, m.lib) }

type p11session struct {
	ctx *p11.Ctx
	sh  p11.SessionHandle
}

func (s *p11session) Login(pin []byte) error {
	err := s.ctx.Login(s.sh, p11.CKU_USER, string(pin))
	var e p11.Error
	if errors.As(err, &e) && e == p11.CKR_USER_ALREADY_LOGGED_IN {
		return nil
	}
	return wrapErr("C_Login", err)
}

func (s *p11session) FindKeys(label string) ([]Object, error) {
	tpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_LABEL, label)}
	if err := s.ctx.FindObjectsInit(s.sh, tpl); err != nil {
		return nil, wrapErr("C_FindObjectsInit", err)
	}
	objs, _, err := s.ctx.FindObjects(s.sh, 4)
	if ferr := s.ctx.FindObjectsFinal(s.sh); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, wrapErr("C_FindObjects", err)
	}
	out := make([]Object, len(objs))
	for i, o := range objs {
		out[i] = Object(o)
	}
	return out, nil
}

func (s *p11session) KeyInfo(key Object) (isAES, enc, dec bool, err error) {
	attrs, err := s.ctx.GetAttributeValue(s.sh, p11.ObjectHandle(key), []*p11.Attribute{
		p11.NewAttribute(p11.CKA_KEY_TYPE, nil), p11.NewAttribute(p11.CKA_ENCRYPT, nil), p11.NewAttribute(p11.CKA_DECRYPT, nil)})
	if err != nil {
		return false, false, false, wrapErr("C_GetAttributeValue", err)
	}
	for _, a := range attrs {
		switch a.Type {
		case p11.CKA_KEY_TYPE:
			isAES = ulong(a.Value) == p11.CKK_AES
		case p11.CKA_ENCRYPT:
			enc = len(a.Value) == 1 && a.Value[0] != 0
		case p11.CKA_DECRYPT:
			dec = len(a.Value) == 1 && a.Value[0] != 0
		}
	}
	return isAES, enc, dec, nil
}

func ulong(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0)
}

func (s *p11session) EncryptGCM(key Object, iv, aad, pt []byte) ([]byte, []byte, error) {
	params := p11.NewGCMParams(iv, aad, tagSize*8)
	defer params.Free()
	if err := s.ctx.EncryptInit(s.sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, p11.ObjectHandle(key)); err != nil {
		return nil, nil, wrapErr("C_EncryptInit", err)
	}
	ct, err := s.ctx.Encrypt(s.sh, pt)
	if err != nil {
		return nil, nil, wrapErr("C_Encrypt", err)
	}
	return append([]byte(nil), params.IV()...), ct, nil
}

func (s *p11session) DecryptGCM(key Object, iv, aad, ct []byte) ([]byte, error) {
	params := p11.NewGCMParams(iv, aad, tagSize*8)
	defer params.Free()
	if err := s.ctx.DecryptInit(s.sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, p11.ObjectHandle(key)); err != nil {
		return nil, wrapErr("C_DecryptInit", err)
	}
	pt, err := s.ctx.Decrypt(s.sh, ct)
	if err != nil {
		return nil, wrapErr("C_Decrypt", err)
	}
	return pt, nil
}

func (s *p11session) Close() error { return wrapErr("C_CloseSession", s.ctx.CloseSession(s.sh)) }
