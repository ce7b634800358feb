// Package gitprovider is the provider side of push auto-deploy: it reads
// repository URLs, creates and deletes push webhooks on GitHub, GitLab,
// Bitbucket Cloud and Gitea/Forgejo (Codeberg, or any declared instance)
// with the user's linked OAuth token, and authenticates and parses the
// push deliveries those hooks send.
//
// # Repositories
//
// ParseRepo accepts only https URLs of the public hosts (github.com,
// gitlab.com with nested groups, bitbucket.org, codeberg.org) or of hosts
// an operator declared (Host: a self-hosted GitLab, Gitea/Forgejo or
// GitHub Enterprise, with its API base). The API a repository's hooks are
// managed through is thus always one the operator configured, never one
// derived from user input. A repository's Provider is also the key of the
// user's token in git_provider_tokens.
//
// # Hooks
//
// Client.CreateHook registers a hook sending JSON push events to the hook
// URL with a per-hook secret (NewSecret):
//
//	provider   endpoint                               auth header            delivery authenticated by
//	GitHub     POST /repos/{owner}/{repo}/hooks        Bearer                 X-Hub-Signature-256: sha256=<hmac>
//	GitLab     POST /projects/{url-encoded path}/hooks Bearer (OAuth token)   X-Gitlab-Token: <secret>
//	Bitbucket  POST /repositories/{ws}/{repo}/hooks    Bearer                 X-Hub-Signature: sha256=<hmac>
//	Gitea      POST /repos/{owner}/{repo}/hooks        token                  X-Gitea-Signature: <hmac> (Forgejo also
//	                                                                          X-Forgejo-Signature, X-Hub-Signature-256)
//
// where <hmac> is the hex HMAC-SHA256 of the raw body keyed by the secret.
// Client.DeleteHook removes it (already gone is success). Failures are
// *Error values classified as ErrUnauthorized (link the account again),
// ErrForbidden and ErrNotFound (saying which scope and role the token
// needs), ErrUnreachable or ErrRejected, carrying the provider's message
// bounded and never the token or secret. The scopes needed are: GitHub
// "repo" (or "admin:repo_hook"), GitLab "api", Bitbucket "webhook",
// Gitea/Forgejo "write:repository", each with admin rights on the
// repository.
//
// # Deliveries
//
// VerifyPush authenticates a delivery (constant-time) and returns the
// pushed refs; the endpoint should read at most MaxPushBody bytes, answer
// 401 on ErrBadSignature, 202 on ErrNotPush (pings and other events), 400
// on ErrBadPayload or ErrUnknownDelivery, and deploy only the push
// ForBranch picks for the app's branch (deleted refs and tags are never
// Deployable).
//
// Package fakeprovider serves all four APIs on loopback for tests and
// sends signed deliveries the way each provider does.
package gitprovider
