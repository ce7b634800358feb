package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
)

// The counts leave out deleted apps and revoked or expired tokens, and
// every user is listed, those with nothing too.
func TestListUserSummaries(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // ada, with the app hello-world
	grace := f.mustUser(t, "grace@example.com")
	f.mustApp(t, f.user.ID, "second-app")
	gone := f.mustApp(t, f.user.ID, "deleted-app")
	f.exec(t, `UPDATE apps SET status = 'deleted', deleted_at = now() WHERE id = $1`, gone.ID)
	past := time.Now().Add(-time.Hour)
	future := time.Now().Add(time.Hour)
	for i, exp := range []*time.Time{nil, &future, &past, nil} {
		tok, err := f.s.CreateAPIToken(f.ctx, store.NewAPIToken{UserID: f.user.ID, Name: fmt.Sprint("t", i),
			TokenHash: fmt.Sprintf("%064x", i), Prefix: "wht_abcd", ExpiresAt: exp})
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if err := f.s.RevokeAPIToken(f.ctx, tok.ID, f.user.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	us, err := f.s.ListUserSummaries(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 || us[0].ID != f.user.ID || us[0].Email != "ada@example.com" || us[0].Apps != 2 || us[0].Tokens != 2 ||
		us[1].ID != grace.ID || us[1].Apps != 0 || us[1].Tokens != 0 || us[1].Plan != "free" {
		for _, u := range us {
			t.Logf("%+v", *u)
		}
		t.Fatal("want ada with 2 apps and 2 live tokens, then grace with none")
	}
}
