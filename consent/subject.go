package consent

import (
	"errors"
	"strings"
)

// ErrUnstorableSubject: a subject id that cannot be written to the
// consent store. Its keys ("<prefix>r:{<subject>}" and its neighbours)
// share a Redis Cluster hash tag only when the subject does not start with
// "}": an empty tag would hash each key whole, into different slots, and
// the scripts that change a subject's keys together would fail forever.
var ErrUnstorableSubject = errors.New(`a subject id starting with "}" cannot be stored`)

// CheckSubject returns ErrUnstorableSubject for a subject id the consent
// store cannot change atomically (see ErrUnstorableSubject).
func CheckSubject(s string) error {
	if strings.HasPrefix(s, "}") {
		return ErrUnstorableSubject
	}
	return nil
}
