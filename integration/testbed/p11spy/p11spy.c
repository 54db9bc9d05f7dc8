/*
 * p11spy: a PKCS#11 module that forwards every call to a real module (the
 * test bed uses SoftHSM2) and stands where an HSM's own audit counters
 * would: it counts the calls that reach the token, and can make the token
 * look removed or reset, so that s3seal's integration tests check, at the
 * token, how many wrap and unwrap operations s3seal made and how it
 * behaves when the token goes away.
 *
 * Environment (read at C_GetFunctionList):
 *   P11SPY_MODULE   path of the real module (required)
 *   P11SPY_DIR      a directory: the spy appends one line naming each
 *                   counted call to DIR/calls (every process that loads
 *                   the spy appends to the same file), makes
 *                   every call fail with CKR_DEVICE_REMOVED while DIR/down
 *                   exists, and on the first call after DIR/reset appears,
 *                   closes all sessions of the slot (which logs the user
 *                   out, as a token reset does) and removes DIR/reset.
 *
 * Test code only; built by the test bed with the C compiler.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include "pkcs11go.h"

static CK_FUNCTION_LIST real;      /* the real module's functions */
static CK_FUNCTION_LIST spy;       /* what this module hands out */
static char dir[4096];
static CK_SLOT_ID last_slot;

static int exists(const char *name) {
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* record appends the name of one counted call to DIR/calls. One write
 * of a short line with O_APPEND is atomic, so processes and threads do not
 * mix their lines. */
static void record(const char *name) {
	char p[4200], line[64];
	snprintf(p, sizeof p, "%s/calls", dir);
	int n = snprintf(line, sizeof line, "%s\n", name);
	int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0) return;
	if (write(fd, line, n) != n) { /* counted as missing: the test fails */ }
	close(fd);
}

/* gate returns an error to give instead of calling the real module. */
static CK_RV gate(void) {
	if (exists("down")) {
		record("removed");
		return CKR_DEVICE_REMOVED;
	}
	if (exists("reset")) {
		char p[4200];
		snprintf(p, sizeof p, "%s/reset", dir);
		if (unlink(p) == 0) real.C_CloseAllSessions(last_slot);
	}
	return CKR_OK;
}

static CK_RV spy_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR s) {
	CK_RV rv = gate();
	if (rv != CKR_OK) return rv;
	last_slot = slot;
	record("C_OpenSession");
	return real.C_OpenSession(slot, flags, app, notify, s);
}

static CK_RV spy_Login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG n) {
	CK_RV rv = gate();
	if (rv != CKR_OK) return rv;
	rv = real.C_Login(s, u, pin, n);
	if (rv == CKR_OK) record("C_Login");
	return rv;
}

static CK_RV spy_EncryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) {
	CK_RV rv = gate();
	return rv != CKR_OK ? rv : real.C_EncryptInit(s, m, k);
}

static CK_RV spy_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR outn) {
	CK_RV rv = gate();
	if (rv != CKR_OK) return rv;
	rv = real.C_Encrypt(s, in, n, out, outn);
	if (rv == CKR_OK && out != NULL) record("C_Encrypt"); /* not the length query */
	return rv;
}

static CK_RV spy_DecryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) {
	CK_RV rv = gate();
	return rv != CKR_OK ? rv : real.C_DecryptInit(s, m, k);
}

static CK_RV spy_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR outn) {
	CK_RV rv = gate();
	if (rv != CKR_OK) return rv;
	rv = real.C_Decrypt(s, in, n, out, outn);
	if (out != NULL && rv != CKR_BUFFER_TOO_SMALL) record("C_Decrypt");
	return rv;
}

static CK_RV spy_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
	CK_RV rv = gate();
	return rv != CKR_OK ? rv : real.C_FindObjectsInit(s, t, n);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
	const char *path = getenv("P11SPY_MODULE");
	const char *d = getenv("P11SPY_DIR");
	if (!path || !d || strlen(d) >= sizeof dir) return CKR_GENERAL_ERROR;
	strcpy(dir, d);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return CKR_GENERAL_ERROR;
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR) = (CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(h, "C_GetFunctionList");
	if (!get) return CKR_GENERAL_ERROR;
	CK_FUNCTION_LIST_PTR r;
	CK_RV rv = get(&r);
	if (rv != CKR_OK) return rv;
	real = *r;
	spy = *r;
	spy.C_OpenSession = spy_OpenSession;
	spy.C_Login = spy_Login;
	spy.C_EncryptInit = spy_EncryptInit;
	spy.C_Encrypt = spy_Encrypt;
	spy.C_DecryptInit = spy_DecryptInit;
	spy.C_Decrypt = spy_Decrypt;
	spy.C_FindObjectsInit = spy_FindObjectsInit;
	*list = &spy;
	return CKR_OK;
}
