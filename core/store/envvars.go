package store

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

var envKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// ValidEnvKey reports whether k is an acceptable env var name
// (^[A-Z][A-Z0-9_]{0,63}$).
func ValidEnvKey(k string) bool { return envKeyRE.MatchString(k) }

// EnvVar is one decrypted environment variable of an app.
type EnvVar struct {
	Key       string    `json:"key"`
	Value     string    `json:"value"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ListAppEnvVars returns the app's env vars, decrypted, sorted by key.
func (s *Store) ListAppEnvVars(ctx context.Context, appID int64) ([]EnvVar, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, value, updated_at FROM app_env_vars WHERE app_id = $1 ORDER BY key`, appID)
	if err != nil {
		return nil, mapErr("list env vars", err)
	}
	vars, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EnvVar, error) {
		var v EnvVar
		var enc string
		if err := r.Scan(&v.Key, &enc, &v.UpdatedAt); err != nil {
			return v, err
		}
		plain, err := s.cipher.Decrypt(enc)
		if err != nil {
			return v, fmt.Errorf("decrypt env var %s: %w", v.Key, err)
		}
		v.Value = plain
		return v, nil
	})
	if err != nil {
		return nil, mapErr("list env vars", err)
	}
	return vars, nil
}

// AppEnvMap returns the app's env vars as a map.
func (s *Store) AppEnvMap(ctx context.Context, appID int64) (map[string]string, error) {
	vars, err := s.ListAppEnvVars(ctx, appID)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(vars))
	for _, v := range vars {
		m[v.Key] = v.Value
	}
	return m, nil
}

// SetAppEnvVar validates the key, encrypts the value and upserts it.
func (s *Store) SetAppEnvVar(ctx context.Context, appID int64, key, value string) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		return s.setEnvVars(ctx, tx, appID, map[string]string{key: value})
	})
}

// setEnvVars upserts several env vars in one statement.
func (s *Store) setEnvVars(ctx context.Context, tx pgx.Tx, appID int64, env map[string]string) error {
	if len(env) == 0 {
		return nil
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		if !ValidEnvKey(k) {
			return fmt.Errorf("store: set env var: key %q must match ^[A-Z][A-Z0-9_]{0,63}$: %w", k, ErrInvalid)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		enc, err := s.cipher.Encrypt(env[k])
		if err != nil {
			return fmt.Errorf("store: set env var %s: encrypt: %w", k, err)
		}
		vals[i] = enc
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO app_env_vars (app_id, key, value)
		SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)
		ON CONFLICT (app_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
		appID, keys, vals)
	return mapErr("set env vars", err)
}

// DeleteAppEnvVar removes one env var; a missing key is ErrNotFound.
func (s *Store) DeleteAppEnvVar(ctx context.Context, appID int64, key string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM app_env_vars WHERE app_id = $1 AND key = $2`, appID, key)
	if err != nil {
		return mapErr("delete env var", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("delete env var", pgx.ErrNoRows)
	}
	return nil
}
