package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// oauthIdentity is who the provider says the user is.
type oauthIdentity struct {
	// Subject is the provider's stable account id.
	Subject string
	// Email is the primary email; EmailVerified whether the provider
	// verified it.
	Email         string
	EmailVerified bool
	Name, Avatar  string
	// Username is the account's login on a git provider.
	Username string
}

// getJSON GETs apiURL+path with the access token and decodes the JSON
// answer into out. Errors carry the path and status, never the token or
// the body.
func getJSON(ctx context.Context, c *http.Client, apiURL, path, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, errors.Unwrap(err)) // the url.Error's URL is logged by path only
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProviderBody))
		return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxProviderBody)).Decode(out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// flexBool decodes true, false, "true" or "false" (Google has sent both).
type flexBool bool

func (b *flexBool) UnmarshalJSON(p []byte) error {
	v, err := strconv.ParseBool(strings.Trim(string(p), `"`))
	if err != nil {
		return fmt.Errorf("not a boolean: %s", clip(string(p), 16))
	}
	*b = flexBool(v)
	return nil
}

// flexID decodes a numeric or string account id.
type flexID string

func (f *flexID) UnmarshalJSON(p []byte) error {
	s := strings.Trim(string(p), `"`)
	if s == "" || s == "null" {
		return errors.New("empty id")
	}
	*f = flexID(s)
	return nil
}

func requireSubject(id *oauthIdentity) (*oauthIdentity, error) {
	if id.Subject == "" {
		return nil, errors.New("the provider returned no account id")
	}
	return id, nil
}

// googleIdentity reads OpenID Connect userinfo.
func googleIdentity(ctx context.Context, c *http.Client, apiURL, token string) (*oauthIdentity, error) {
	var u struct {
		Sub           string   `json:"sub"`
		Email         string   `json:"email"`
		EmailVerified flexBool `json:"email_verified"`
		Name          string   `json:"name"`
		Picture       string   `json:"picture"`
	}
	if err := getJSON(ctx, c, apiURL, "/userinfo", token, &u); err != nil {
		return nil, err
	}
	return requireSubject(&oauthIdentity{Subject: u.Sub, Email: u.Email, EmailVerified: bool(u.EmailVerified),
		Name: u.Name, Avatar: u.Picture})
}

// githubIdentity reads /user and, for the primary verified email,
// /user/emails.
func githubIdentity(ctx context.Context, c *http.Client, apiURL, token string) (*oauthIdentity, error) {
	var u struct {
		ID     flexID `json:"id"`
		Login  string `json:"login"`
		Name   string `json:"name"`
		Avatar string `json:"avatar_url"`
	}
	if err := getJSON(ctx, c, apiURL, "/user", token, &u); err != nil {
		return nil, err
	}
	id := &oauthIdentity{Subject: string(u.ID), Username: u.Login, Name: or(u.Name, u.Login), Avatar: u.Avatar}
	if err := primaryEmail(ctx, c, apiURL, token, id); err != nil {
		return nil, err
	}
	return requireSubject(id)
}

// primaryEmail sets id's email to the primary one of /user/emails (GitHub
// and Gitea answer the same shape), with whether it is verified.
func primaryEmail(ctx context.Context, c *http.Client, apiURL, token string, id *oauthIdentity) error {
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := getJSON(ctx, c, apiURL, "/user/emails", token, &emails); err != nil {
		return err
	}
	for _, e := range emails {
		if e.Primary {
			id.Email, id.EmailVerified = e.Email, e.Verified
		}
	}
	return nil
}

// gitlabIdentity reads /user: the primary email counts as verified when
// the account is confirmed (confirmed_at).
func gitlabIdentity(ctx context.Context, c *http.Client, apiURL, token string) (*oauthIdentity, error) {
	var u struct {
		ID          flexID  `json:"id"`
		Username    string  `json:"username"`
		Name        string  `json:"name"`
		Email       string  `json:"email"`
		Avatar      string  `json:"avatar_url"`
		ConfirmedAt *string `json:"confirmed_at"`
	}
	if err := getJSON(ctx, c, apiURL, "/user", token, &u); err != nil {
		return nil, err
	}
	return requireSubject(&oauthIdentity{Subject: string(u.ID), Username: u.Username, Name: or(u.Name, u.Username),
		Avatar: u.Avatar, Email: u.Email, EmailVerified: u.ConfirmedAt != nil && *u.ConfirmedAt != ""})
}

// bitbucketIdentity reads /user and /user/emails (primary and confirmed).
func bitbucketIdentity(ctx context.Context, c *http.Client, apiURL, token string) (*oauthIdentity, error) {
	var u struct {
		UUID        string `json:"uuid"`
		Username    string `json:"username"`
		DisplayName string `json:"display_name"`
		Links       struct {
			Avatar struct {
				Href string `json:"href"`
			} `json:"avatar"`
		} `json:"links"`
	}
	if err := getJSON(ctx, c, apiURL, "/user", token, &u); err != nil {
		return nil, err
	}
	var emails struct {
		Values []struct {
			Email     string `json:"email"`
			Primary   bool   `json:"is_primary"`
			Confirmed bool   `json:"is_confirmed"`
		} `json:"values"`
	}
	if err := getJSON(ctx, c, apiURL, "/user/emails", token, &emails); err != nil {
		return nil, err
	}
	id := &oauthIdentity{Subject: u.UUID, Username: u.Username, Name: or(u.DisplayName, u.Username), Avatar: u.Links.Avatar.Href}
	for _, e := range emails.Values {
		if e.Primary {
			id.Email, id.EmailVerified = e.Email, e.Confirmed
		}
	}
	return requireSubject(id)
}

// giteaIdentity reads a Gitea/Forgejo (Codeberg) /user and /user/emails.
func giteaIdentity(ctx context.Context, c *http.Client, apiURL, token string) (*oauthIdentity, error) {
	var u struct {
		ID       flexID `json:"id"`
		Login    string `json:"login"`
		FullName string `json:"full_name"`
		Avatar   string `json:"avatar_url"`
	}
	if err := getJSON(ctx, c, apiURL, "/user", token, &u); err != nil {
		return nil, err
	}
	id := &oauthIdentity{Subject: string(u.ID), Username: u.Login, Name: or(u.FullName, u.Login), Avatar: u.Avatar}
	if err := primaryEmail(ctx, c, apiURL, token, id); err != nil {
		return nil, err
	}
	return requireSubject(id)
}
