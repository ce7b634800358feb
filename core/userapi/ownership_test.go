package userapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// fixture is ada's resources: the value of each route parameter, and
// markers (identifiers, secrets) that must never appear in a response to
// anyone else.
type fixture struct {
	params  map[string]string
	markers []string
}

// fixtureBuilders each add one kind of ada's resources to f (apps,
// domains, webhooks, alerts, …); buildFixture runs them all.
var fixtureBuilders []func(e *env, f *fixture)

func buildFixture(e *env) *fixture {
	f := &fixture{params: map[string]string{}}
	for _, b := range fixtureBuilders {
		b(e, f)
	}
	return f
}

// snapshotters each dump one kind of ada's state, read straight from the
// store, so the test can tell whether eve changed any of it.
var snapshotters []func(ctx context.Context, e *env) any

func snapshot(t *testing.T, e *env) string {
	t.Helper()
	var parts []any
	for _, s := range snapshotters {
		parts = append(parts, s(context.Background(), e))
	}
	b, err := json.Marshal(parts)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ownershipBodies are the request bodies eve sends to routes that take one
// (a valid body, so that only ownership can refuse it), by "METHOD path".
var ownershipBodies = map[string]any{}

// ownershipQueries are query strings for routes that name the resource in
// the query rather than the path; {param} is the fixture's value.
var ownershipQueries = map[string]string{}

var routeParam = regexp.MustCompile(`:([a-z_]+)`)

// TestOwnership: for every authenticated route, eve can neither read nor
// change ada's resources. A route naming one of ada's resources answers
// eve 404, as for a missing one; a collection route answers without any
// of ada's markers; and afterwards ada's state is as it was.
func TestOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := buildFixture(e)
	before := snapshot(t, e)
	for _, rt := range e.svc.Routes() {
		if rt.Public {
			continue
		}
		key := rt.Method + " " + rt.Path
		t.Run(key, func(t *testing.T) {
			path := rt.Path
			named := false
			for _, m := range routeParam.FindAllStringSubmatch(rt.Path, -1) {
				v, ok := f.params[m[1]]
				if !ok {
					t.Fatalf("the fixture has no value for :%s; add ada's resource to a fixture builder", m[1])
				}
				path = strings.Replace(path, m[0], v, 1)
				named = true
			}
			if q, ok := ownershipQueries[key]; ok {
				for p, v := range f.params {
					q = strings.ReplaceAll(q, "{"+p+"}", v)
				}
				path += "?" + q
				named = true
			}
			r := e.do(e.eve, rt.Method, path, ownershipBodies[key])
			if named && r.Status != http.StatusNotFound {
				t.Errorf("eve on ada's resource: status %d, want 404\n%s", r.Status, r.Body)
			}
			if r.Status >= 500 {
				t.Errorf("status %d\n%s", r.Status, r.Body)
			}
			// The 404 means something only if the route finds the resource
			// for its owner (read-only routes; the others would change it).
			if named && rt.Method == http.MethodGet {
				if own := e.do(e.ada, rt.Method, path, nil); own.Status == http.StatusNotFound {
					t.Errorf("ada's own request answers 404 too: the fixture names no resource of hers\n%s", own.Body)
				}
			}
			for _, m := range f.markers {
				if strings.Contains(string(r.Body), m) {
					t.Errorf("the response to eve carries ada's %q:\n%s", m, r.Body)
				}
			}
		})
	}
	if after := snapshot(t, e); after != before {
		t.Errorf("eve's requests changed ada's state:\nbefore %s\nafter  %s", before, after)
	}
}

// TestRoutesNeedACaller: every route but the public ones answers an
// unauthenticated request 401.
func TestRoutesNeedACaller(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := buildFixture(e)
	for _, rt := range e.svc.Routes() {
		if rt.Public {
			continue
		}
		path := routeParam.ReplaceAllStringFunc(rt.Path, func(p string) string { return f.params[p[1:]] })
		if r := e.do(nil, rt.Method, path, ownershipBodies[rt.Method+" "+rt.Path]); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s unauthenticated: status %d, want 401", rt.Method, rt.Path, r.Status)
		}
	}
}
