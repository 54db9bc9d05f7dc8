package integration

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/integration/testbed"
)

// Barman's cloud tools back up a real PostgreSQL server through s3seal:
// WAL archiving from archive_command, a base backup large enough to be
// uploaded in several parts of barman's default size (21,474,836 bytes),
// the backup list, a restore, and recovery that fetches WAL with
// barman-cloud-wal-restore; the restored cluster must start and hold the
// rows written before and after the base backup.

// pgCluster is a PostgreSQL server run as the postgres user on loopback.
type pgCluster struct {
	t    *testing.T
	bin  string // PostgreSQL's bin directory
	dir  string // world-traversable work directory
	data string
	port int
	env  []string // environment for barman's tools
}

func pgBinDir(t *testing.T) string {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		t.Fatal("PostgreSQL's server is not installed (integration/testbed/install.sh clients installs it)")
	}
	return filepath.Dir(m[len(m)-1])
}

// asPostgres runs a program as the postgres user.
func (pg *pgCluster) asPostgres(what string, timeout time.Duration, name string, args ...string) (toolResult, bool) {
	pg.t.Helper()
	env := []string{"PATH=" + pg.bin + ":" + os.Getenv("PATH"), "HOME=" + pg.dir, "LANG=C.UTF-8"}
	return step(pg.t, env, what, timeout, "runuser", append([]string{"-u", "postgres", "--", "env", "-C", "/", name}, args...)...)
}

func (pg *pgCluster) psql(sql string) (string, bool) {
	pg.t.Helper()
	r, ok := pg.asPostgres("psql", 3*time.Minute, filepath.Join(pg.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", "-d", "postgres", "-c", sql)
	return strings.TrimSpace(r.out), ok
}

func (pg *pgCluster) start(data string) bool {
	return pg.startLogged(data, filepath.Join(pg.dir, filepath.Base(data)+".log"))
}

func (pg *pgCluster) startLogged(data, log string) bool {
	pg.t.Helper()
	_, ok := pg.asPostgres("pg_ctl start", 2*time.Minute, filepath.Join(pg.bin, "pg_ctl"), "-D", data, "-l", log, "-w", "-t", "90", "start")
	if !ok {
		b, _ := os.ReadFile(log)
		pg.t.Logf("PostgreSQL log:\n%s", tailString(string(b), 3000))
		return false
	}
	pg.t.Cleanup(func() {
		// Stopped already when the test got that far; no error either way.
		runTool(pg.t, []string{"PATH=" + os.Getenv("PATH")}, "", time.Minute, "runuser", "-u", "postgres", "--",
			filepath.Join(pg.bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
	})
	return true
}

func newPGWorkDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "s3seal-pg-")
	must(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(dir) })
	u, err := user.Lookup("postgres")
	must(t, err, "the postgres user (Debian's postgresql package creates it)")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	must(t, os.Chown(dir, uid, gid), "chown")
	must(t, os.Chmod(dir, 0o700), "chmod")
	return dir
}

// writeScript writes an executable shell script owned by postgres.
func writeScript(t *testing.T, path, body string) {
	must(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700), "script")
	u, _ := user.Lookup("postgres")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	must(t, os.Chown(path, uid, gid), "chown script")
}

func runBarman(t *testing.T, c *matrixCell) {
	pg := &pgCluster{t: t, bin: pgBinDir(t), dir: newPGWorkDir(t), port: testbed.FreePort(t)}
	pg.data = filepath.Join(pg.dir, "data")
	// The CA must be readable by postgres, which runs archive_command.
	ca := filepath.Join(pg.dir, "ca.pem")
	caPEM, err := os.ReadFile(c.p.CAFile)
	must(t, err, "CA")
	must(t, os.WriteFile(ca, caPEM, 0o644), "CA copy")
	awsEnv := fmt.Sprintf("export AWS_ACCESS_KEY_ID=%q AWS_SECRET_ACCESS_KEY=%q AWS_CA_BUNDLE=%q AWS_DEFAULT_REGION=us-east-1 HOME=%q\n",
		c.p.AccessKey, c.p.SecretKey, ca, pg.dir)
	dest := "s3://" + c.bucket + "/barman"
	cloud := []string{"--cloud-provider", "aws-s3", "--endpoint-url", c.p.Endpoint}
	archive := filepath.Join(pg.dir, "archive.sh")
	writeScript(t, archive, awsEnv+"exec barman-cloud-wal-archive "+strings.Join(cloud, " ")+" "+dest+" pg \"$1\"\n")
	restoreWAL := filepath.Join(pg.dir, "wal-restore.sh")
	writeScript(t, restoreWAL, awsEnv+"exec barman-cloud-wal-restore "+strings.Join(cloud, " ")+" "+dest+" pg \"$1\" \"$2\"\n")
	pg.env = append(baseEnv(t), "AWS_ACCESS_KEY_ID="+c.p.AccessKey, "AWS_SECRET_ACCESS_KEY="+c.p.SecretKey,
		"AWS_CA_BUNDLE="+ca, "AWS_DEFAULT_REGION=us-east-1")

	if _, ok := pg.asPostgres("initdb", 2*time.Minute, filepath.Join(pg.bin, "initdb"), "-D", pg.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); !ok {
		return
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nwal_level = replica\n"+
		"archive_mode = on\narchive_command = '%s %%p'\narchive_timeout = 0\nfsync = off\nshared_buffers = 32MB\nmax_wal_size = 256MB\n",
		pg.port, pg.dir, archive)
	f, err := os.OpenFile(filepath.Join(pg.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err, "postgresql.conf")
	_, err = f.WriteString(conf)
	f.Close()
	must(t, err, "postgresql.conf")
	if !pg.start(pg.data) {
		return
	}
	// About 30 MB of rows before the base backup, so that the backup is
	// several default-sized parts.
	rows := vol(400000, 250000)
	if _, ok := pg.psql(fmt.Sprintf("CREATE TABLE before_backup AS SELECT g AS id, md5(g::text) || %s AS v FROM generate_series(1, %d) g;"+
		" SELECT pg_switch_wal();", sqlQuote(" "+c.marker), rows)); !ok {
		return
	}
	for range 2 {
		pg.psql("CREATE TABLE IF NOT EXISTS filler(x int); INSERT INTO filler SELECT generate_series(1, 1000); SELECT pg_switch_wal();")
	}
	if !waitArchived(pg, 3) {
		return
	}
	backup := append(append([]string{}, cloud...), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", "--immediate-checkpoint", dest, "pg")
	if _, ok := step(t, pg.env, "barman-cloud-backup", 5*time.Minute, "barman-cloud-backup", backup...); !ok {
		return
	}
	// Rows after the backup reach the restore only through archived WAL.
	pg.psql("CREATE TABLE after_backup AS SELECT g AS id FROM generate_series(1, 777) g; SELECT pg_switch_wal();")
	archivedBefore, _ := pg.psql("SELECT archived_count FROM pg_stat_archiver")
	n, _ := strconv.Atoi(archivedBefore)
	if !waitArchived(pg, n+1) {
		return
	}
	r, ok := step(t, pg.env, "barman-cloud-backup-list", 2*time.Minute, "barman-cloud-backup-list", append(append([]string{}, cloud...), "--format", "json", dest, "pg")...)
	if !ok {
		return
	}
	id := backupID(r.out)
	if id == "" {
		t.Errorf("barman-cloud-backup-list shows no backup:\n%s", r.out)
		return
	}
	// The base backup's data.tar went up in several parts of barman's
	// default size.
	const barmanPart = 21474836
	largest := int64(0)
	for _, size := range storeSizes(t, c, "barman/pg/base/"+id+"/") {
		largest = max(largest, size)
	}
	if largest < 2*barmanPart {
		t.Errorf("the base backup's largest object is %d bytes on the store, want over two parts of %d", largest, barmanPart)
	}
	pg.asPostgres("pg_ctl stop", time.Minute, filepath.Join(pg.bin, "pg_ctl"), "-D", pg.data, "-m", "fast", "-w", "stop")

	restored := filepath.Join(pg.dir, "restored")
	if _, ok := step(t, pg.env, "barman-cloud-restore", 5*time.Minute, "barman-cloud-restore", append(append([]string{}, cloud...), dest, "pg", id, restored)...); !ok {
		return
	}
	if _, ok := step(t, nil, "chown", time.Minute, "/bin/chown", "-R", "postgres:postgres", restored); !ok {
		return
	}
	must(t, os.Chmod(restored, 0o700), "chmod")
	auto := fmt.Sprintf("\nrestore_command = '%s %%f %%p'\narchive_mode = off\nport = %d\n", restoreWAL, pg.port)
	f, err = os.OpenFile(filepath.Join(restored, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	must(t, err, "postgresql.auto.conf")
	_, err = f.WriteString(auto)
	f.Close()
	must(t, err, "postgresql.auto.conf")
	must(t, os.WriteFile(filepath.Join(restored, "recovery.signal"), nil, 0o600), "recovery.signal")
	if !pg.start(restored) {
		return
	}
	// Recovery ends when barman-cloud-wal-restore finds no more WAL.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := pg.psql("SELECT pg_is_in_recovery()")
		if out == "f" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the restored cluster is still in recovery after 2 minutes")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	if out, ok := pg.psql("SELECT count(*), sum(id) FILTER (WHERE v LIKE '%' || " + sqlQuote(c.marker) + ") > 0 FROM before_backup"); ok && out != fmt.Sprintf("%d|t", rows) {
		t.Errorf("restored before_backup: %q, want %d rows holding the marker", out, rows)
	}
	if out, ok := pg.psql("SELECT count(*) FROM after_backup"); ok && out != "777" {
		t.Errorf("restored after_backup (replayed from archived WAL): %q rows, want 777", out)
	}
}

func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// waitArchived waits until PostgreSQL has archived n WAL segments.
func waitArchived(pg *pgCluster, n int) bool {
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _ := pg.psql("SELECT archived_count || '|' || failed_count || '|' || coalesce(last_failed_wal, '') FROM pg_stat_archiver")
		parts := strings.Split(out, "|")
		if len(parts) == 3 {
			if got, _ := strconv.Atoi(parts[0]); got >= n {
				return true
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(pg.dir, "data.log"))
			pg.t.Errorf("barman-cloud-wal-archive: %s (archived|failed|last failed) after 90 s, want %d archived; log:\n%s", out, n, tailString(string(b), 2500))
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// backupID returns the first backup id in barman-cloud-backup-list's JSON.
func backupID(out string) string {
	i := strings.Index(out, `"backup_id"`)
	if i < 0 {
		return ""
	}
	rest := out[i+len(`"backup_id"`):]
	rest = strings.TrimLeft(rest, " :")
	if !strings.HasPrefix(rest, `"`) {
		return ""
	}
	rest = rest[1:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}
