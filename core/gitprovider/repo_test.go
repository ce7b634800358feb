package gitprovider_test

import (
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/gitprovider"
)

func TestParseRepo(t *testing.T) {
	extra := []gitprovider.Host{
		{Host: "git.example.com", Kind: "gitlab"},
		{Host: "Forge.Example.org:8443", Kind: "forgejo", APIBase: "https://forge.example.org:8443/api/v1/"},
		{Host: "ghe.example.net", Kind: "github"},
	}
	tests := []struct {
		url  string
		want gitprovider.Repo
		err  string
	}{
		{url: "https://github.com/ada/app", want: gitprovider.Repo{Provider: "github", Host: "github.com", Owner: "ada", Name: "app"}},
		{url: "https://github.com/ada/app.git", want: gitprovider.Repo{Provider: "github", Host: "github.com", Owner: "ada", Name: "app"}},
		{url: " https://GitHub.com/Ada/My.App_2/ ", want: gitprovider.Repo{Provider: "github", Host: "github.com", Owner: "Ada", Name: "My.App_2"}},
		{url: "HTTPS://github.com:443/ada/app.git", want: gitprovider.Repo{Provider: "github", Host: "github.com", Owner: "ada", Name: "app"}},
		{url: "https://github.com/ada/.github", want: gitprovider.Repo{Provider: "github", Host: "github.com", Owner: "ada", Name: ".github"}},
		{url: "https://gitlab.com/group/sub/deeper/name.git", want: gitprovider.Repo{Provider: "gitlab", Host: "gitlab.com", Owner: "group/sub/deeper", Name: "name"}},
		{url: "https://gitlab.com/ada/app", want: gitprovider.Repo{Provider: "gitlab", Host: "gitlab.com", Owner: "ada", Name: "app"}},
		{url: "https://bitbucket.org/ws/repo", want: gitprovider.Repo{Provider: "bitbucket", Host: "bitbucket.org", Owner: "ws", Name: "repo"}},
		{url: "https://codeberg.org/owner/repo.git", want: gitprovider.Repo{Provider: "codeberg", Host: "codeberg.org", Owner: "owner", Name: "repo"}},
		{url: "https://git.example.com/team/infra/app", want: gitprovider.Repo{Provider: "gitlab", Host: "git.example.com", Owner: "team/infra",
			Name: "app", APIBase: "https://git.example.com/api/v4"}},
		{url: "https://forge.example.org:8443/o/r", want: gitprovider.Repo{Provider: "codeberg", Host: "forge.example.org:8443", Owner: "o",
			Name: "r", APIBase: "https://forge.example.org:8443/api/v1"}},
		{url: "https://ghe.example.net/o/r", want: gitprovider.Repo{Provider: "github", Host: "ghe.example.net", Owner: "o", Name: "r",
			APIBase: "https://ghe.example.net/api/v3"}},

		{url: "", err: "no repository URL"},
		{url: "http://github.com/ada/app", err: "https URL, not http://"},
		{url: "ssh://git@github.com/ada/app.git", err: "https URL, not ssh://"},
		{url: "git@github.com:ada/app.git", err: "ssh and scp-style"},
		{url: "github.com/ada/app", err: "must be an https URL"},
		{url: "https://x-access-token:ghp_SECRET@github.com/ada/app", err: "must not contain credentials"},
		{url: "https://github.com/ada/app?tab=readme", err: "query"},
		{url: "https://github.com/ada/app#readme", err: "fragment"},
		{url: "https://github.com/ada", err: "owner and a repository"},
		{url: "https://github.com/", err: "owner and a repository"},
		{url: "https://github.com/ada/app/tree/main", err: "without anything after the name"},
		{url: "https://bitbucket.org/ws/repo/src", err: "without anything after the name"},
		{url: "https://gitlab.com/ada/app/-/tree/main", err: "must not start with -"},
		{url: "https://github.com/ada/../app", err: "must not contain . or .."},
		{url: "https://github.com/ada//app", err: "empty part"},
		{url: "https://github.com/ada/a%2Fb", err: "percent-encoded"},
		{url: "https://github.com/ada/a b", err: "only letters, digits"},
		{url: "https://github.com/ada/%41pp", err: "percent-encoded"},
		{url: "https://github.com/ada/a%20b", err: "only letters, digits"},
		{url: "https://github.com/ada/app$", err: "only letters, digits"},
		{url: "https://github.com/ada/.git", err: "empty part"},
		{url: "https://github.com/ada/app.git.git", err: "must not end in .git.git"},
		{url: "https://github.com:8443/ada/app", err: "unknown git host"},
		{url: "https://evil.example/ada/app", err: "unknown git host"},
		{url: "https:///ada/app", err: "no host"},
		{url: "https://gitlab.com/" + strings.Repeat("g/", 21) + "app", err: "more than 21 parts"},
		{url: "https://github.com/ada/" + strings.Repeat("a", 256), err: "longer than 255"},
		{url: "https://github.com/ada/" + strings.Repeat("a", 2048), err: "longer than 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := gitprovider.ParseRepo(tt.url, extra...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseRepo = %+v, %v; want an error with %q", got, err, tt.err)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Fatalf("the error repeats the credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRepo: %v", err)
			}
			if got != tt.want {
				t.Fatalf("ParseRepo = %+v, want %+v", got, tt.want)
			}
			again, err := gitprovider.ParseRepo(got.URL(), extra...)
			if err != nil || again != got {
				t.Fatalf("the canonical URL %q parses to %+v, %v", got.URL(), again, err)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	tests := []struct {
		name  string
		hosts []gitprovider.Host
		err   string
	}{
		{name: "none"},
		{name: "gitea alias", hosts: []gitprovider.Host{{Host: "git.example.com", Kind: "gitea"}}},
		{name: "http API", hosts: []gitprovider.Host{{Host: "git.example.com", Kind: "gitlab", APIBase: "http://10.0.0.5/api/v4"}}},
		{name: "unknown kind", hosts: []gitprovider.Host{{Host: "git.example.com", Kind: "sourcehut"}}, err: "unknown provider"},
		{name: "bitbucket", hosts: []gitprovider.Host{{Host: "bb.example.com", Kind: "bitbucket"}}, err: "cannot be self-hosted"},
		{name: "bad host", hosts: []gitprovider.Host{{Host: "https://git.example.com", Kind: "gitlab"}}, err: "not a host name"},
		{name: "bad api", hosts: []gitprovider.Host{{Host: "git.example.com", Kind: "gitlab", APIBase: "ftp://x/api"}}, err: "http or https"},
		{name: "api creds", hosts: []gitprovider.Host{{Host: "git.example.com", Kind: "gitlab", APIBase: "https://u:p@x/api"}}, err: "credentials"},
		{name: "twice", hosts: []gitprovider.Host{{Host: "git.example.com", Kind: "gitlab"}, {Host: "GIT.example.com", Kind: "gitea"}}, err: "declared twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := gitprovider.ValidateHosts(tt.hosts)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("ValidateHosts = %v, want %q", err, tt.err)
			}
			_, err = gitprovider.New(gitprovider.Options{Hosts: tt.hosts})
			if tt.err == "" && err != nil || tt.err != "" && err == nil {
				t.Fatalf("New = %v, want %q", err, tt.err)
			}
		})
	}
	if _, err := gitprovider.New(gitprovider.Options{APIBase: map[gitprovider.Provider]string{"sourcehut": "https://x"}}); err == nil {
		t.Fatal("New accepted an API base for an unknown provider")
	}
	if _, err := gitprovider.New(gitprovider.Options{APIBase: map[gitprovider.Provider]string{gitprovider.GitHub: "api.github.com"}}); err == nil {
		t.Fatal("New accepted a relative API base")
	}
}

func TestParseProvider(t *testing.T) {
	for in, want := range map[string]gitprovider.Provider{"github": "github", "GitLab": "gitlab", "bitbucket": "bitbucket",
		"codeberg": "codeberg", "gitea": "codeberg", "forgejo": "codeberg"} {
		if got, err := gitprovider.ParseProvider(in); err != nil || got != want {
			t.Errorf("ParseProvider(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := gitprovider.ParseProvider("google"); err == nil {
		t.Error("google is not a git provider")
	}
}
