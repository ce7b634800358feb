package daemon

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestWithPassword(t *testing.T) {
	t.Parallel()
	const tricky = `it's "quoted" \back\slash\ ' \' p@ss:w/rd?#%&=+ end `
	tests := []struct {
		name     string
		conn     string
		password string
		// What the result must parse to (pgconn.ParseConfig, as the store
		// does); empty fields are not checked.
		user, host, database string
		port                 uint16
	}{
		{name: "url", conn: "postgres://app@db.internal:6432/wh?sslmode=disable", password: "s3cret",
			user: "app", host: "db.internal", port: 6432, database: "wh"},
		{name: "postgresql scheme", conn: "postgresql://app@db.internal/wh", password: "s3cret",
			user: "app", host: "db.internal", port: 5432, database: "wh"},
		{name: "url, single and double quotes", conn: "postgres://app@db.internal/wh", password: `it's "quoted"`,
			user: "app", host: "db.internal", database: "wh"},
		{name: "url, backslashes", conn: "postgres://app@db.internal/wh", password: `\back\slash\`,
			user: "app", host: "db.internal", database: "wh"},
		{name: "url, every special character", conn: "postgres://app@db.internal/wh", password: tricky,
			user: "app", host: "db.internal", database: "wh"},
		{name: "url, replaces the password in the url", conn: "postgres://app:old@db.internal/wh", password: `n'e\w`,
			user: "app", host: "db.internal", database: "wh"},
		{name: "url without user", conn: "postgres://db.internal/wh", password: `n'e\w`,
			host: "db.internal", database: "wh"},
		{name: "url, unix socket in the query", conn: "postgres:///wh?host=/var/run/postgresql", password: tricky,
			host: "/var/run/postgresql", database: "wh"},
		{name: "url, password in the query", conn: "postgres://app@db.internal/wh?password=old", password: "new",
			user: "app", host: "db.internal", database: "wh"},
		{name: "url, several hosts", conn: "postgres://app@db1.internal:5432,db2.internal:5432/wh", password: "s3cret",
			user: "app", host: "db1.internal", database: "wh"},
		{name: "key/value", conn: "host=db.internal port=6432 user=app dbname=wh", password: "s3cret",
			user: "app", host: "db.internal", port: 6432, database: "wh"},
		{name: "key/value, single quotes", conn: "host=db.internal user=app dbname=wh", password: `it's 'quoted'`,
			user: "app", host: "db.internal", database: "wh"},
		{name: "key/value, backslashes", conn: "host=db.internal user=app dbname=wh", password: `\back\slash\`,
			user: "app", host: "db.internal", database: "wh"},
		{name: "key/value, quote after backslash", conn: "host=db.internal user=app dbname=wh", password: `\'`,
			user: "app", host: "db.internal", database: "wh"},
		{name: "key/value, every special character", conn: "host=db.internal user=app dbname=wh", password: tricky,
			user: "app", host: "db.internal", database: "wh"},
		{name: "key/value, replaces an earlier password", conn: "host=db.internal user=app password='old' dbname=wh", password: `n'e\w`,
			user: "app", host: "db.internal", database: "wh"},
		{name: "key/value, quoted socket directory", conn: `host='/run/pg sock' user=app dbname=wh`, password: tricky,
			user: "app", host: "/run/pg sock", database: "wh"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := withPassword(tc.conn, tc.password)
			var problems []string
			if err != nil {
				problems = append(problems, "error: "+err.Error())
			} else if cfg, perr := pgconn.ParseConfig(got); perr != nil {
				problems = append(problems, "result does not parse: "+perr.Error())
			} else {
				check := func(field, got, want string) {
					if want != "" && got != want {
						problems = append(problems, field+" = "+got+", want "+want)
					}
				}
				check("password", cfg.Password, tc.password)
				check("user", cfg.User, tc.user)
				check("host", cfg.Host, tc.host)
				check("database", cfg.Database, tc.database)
				if tc.port != 0 && cfg.Port != tc.port {
					problems = append(problems, "port changed")
				}
			}
			evidence := "withPassword(" + tc.conn + ") = " + got + "\n" + strings.Join(problems, "\n")
			if len(problems) > 0 {
				t.Error(evidence)
			}
		})
	}
}

func TestWithPasswordEmptyKeepsConnString(t *testing.T) {
	t.Parallel()
	for _, conn := range []string{
		"postgres://app:kept@db.internal/wh?sslmode=disable",
		"host=db.internal user=app password='kept' dbname=wh",
		"postgres://app@db1,db2/wh",
		"not a connection string at all %zz",
	} {
		got, err := withPassword(conn, "")
		if err != nil || got != conn {
			t.Errorf("withPassword(%q, \"\") = %q, %v; want it unchanged", conn, got, err)
		}
	}
}

func TestWithPasswordInvalidURL(t *testing.T) {
	t.Parallel()
	const password = "hunter2-not-in-errors"
	_, err := withPassword("postgres://app:old-secret@db.internal:notaport/wh", password)
	if err == nil {
		t.Fatal("want an error for a URL with an invalid port")
	}
	if want := "daemon: database.url is not a valid URL"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	for _, s := range []string{password, "old-secret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error shows a secret: %v", err)
		}
	}
}
