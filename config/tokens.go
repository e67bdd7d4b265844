package config

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
)

// Scopes a token may hold: read (get, export, detailed /readyz), write
// (set, revoke, erase, link) and admin (PUT /loglevel).
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeAdmin = "admin"
)

// AllScopes are every scope, the scopes of a token file's single unnamed
// token.
var AllScopes = []string{ScopeRead, ScopeWrite, ScopeAdmin}

// Token is a named bearer token and what it may do. The name is logged
// with every call it makes; the secret never is.
type Token struct {
	Name   string
	Scopes []string
	Secret Secret
}

// Allows reports whether the token holds scope.
func (t Token) Allows(scope string) bool { return slices.Contains(t.Scopes, scope) }

// MinTokenLen is the shortest token secret accepted.
const MinTokenLen = 16

// parseTokens reads admin.token_file: either one token alone (named
// "admin", every scope), or lines "NAME:SCOPE[,SCOPE...]:TOKEN" (blank
// lines and lines starting with # ignored). Errors never hold a secret.
func parseTokens(data string) ([]Token, error) {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("no token")
	}
	if len(lines) == 1 && strings.Count(lines[0], ":") != 2 {
		if len(lines[0]) < MinTokenLen {
			return nil, fmt.Errorf("the token must be at least %d characters", MinTokenLen)
		}
		return []Token{{Name: "admin", Scopes: AllScopes, Secret: Secret(lines[0])}}, nil
	}
	var out []Token
	for i, l := range lines {
		name, rest, ok1 := strings.Cut(l, ":")
		scopes, secret, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("line %d: want NAME:SCOPES:TOKEN (scopes read, write, admin, comma-separated)", i+1)
		}
		if err := tokenName(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		t := Token{Name: name, Secret: Secret(secret)}
		for _, s := range strings.Split(scopes, ",") {
			if !slices.Contains(AllScopes, s) {
				return nil, fmt.Errorf("line %d (%s): unknown scope %q (read, write, admin)", i+1, name, s)
			}
			t.Scopes = append(t.Scopes, s)
		}
		if len(secret) < MinTokenLen {
			return nil, fmt.Errorf("line %d (%s): the token must be at least %d characters", i+1, name, MinTokenLen)
		}
		for _, o := range out {
			if o.Name == name {
				return nil, fmt.Errorf("line %d: token name %q used twice", i+1, name)
			}
			if o.Secret == t.Secret {
				return nil, fmt.Errorf("line %d (%s): the same token as %s", i+1, name, o.Name)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func tokenName(s string) error {
	if s == "" {
		return fmt.Errorf("empty token name")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("token name %q: only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// AllTokens returns the API tokens: Tokens, or Token alone as "admin"
// with every scope when only it is set.
func (a Admin) AllTokens() []Token {
	if len(a.Tokens) > 0 || a.Token == "" {
		return a.Tokens
	}
	return []Token{{Name: "admin", Scopes: AllScopes, Secret: a.Token}}
}
