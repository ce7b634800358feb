// Package storetest gives each test a fresh, fully migrated database and a
// Store over it. The package's TestMain must call pgtest.Main so the
// throwaway cluster is stopped when the test binary ends:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
package storetest

import (
	"context"
	"testing"

	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
)

// Secret is the server secret test stores use.
const Secret = "storetest-server-secret-0123456789"

// ConnString returns a connection string for a new database migrated to the
// latest schema (cloned from a template migrated once per test binary).
func ConnString(t testing.TB) string {
	t.Helper()
	return pgtest.NewDatabase(t, "migrations", func(ctx context.Context, cs string) error {
		_, err := store.Migrate(ctx, cs)
		return err
	})
}

// Cipher returns the column cipher for Secret.
func Cipher(t testing.TB) *secrets.Cipher {
	t.Helper()
	c, err := secrets.NewCipher(Secret)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// New returns a Store over a fresh migrated database, closed at cleanup.
func New(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{
		ConnString: ConnString(t), MaxConns: 8, MinConns: 1,
		Cipher: Cipher(t), Logger: testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
