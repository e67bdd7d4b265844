package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/consentd/consentd/internal/lib/yamlx"
)

// EnvPrefix starts the name of every environment variable that overrides a
// setting. The rest is the setting's dotted key in upper case with dots
// replaced by underscores: kafka.brokers is CONSENTD_KAFKA_BROKERS,
// kafka.sasl.password_file is CONSENTD_KAFKA_SASL_PASSWORD_FILE. Lists are
// comma-separated, durations are Go durations (500ms, 10s), booleans are
// true or false. A variable that is set, even to "", overrides the file.
const EnvPrefix = "CONSENTD_"

// EnvVar is one environment variable that overrides a setting.
type EnvVar struct {
	// Name of the variable, e.g. CONSENTD_KAFKA_BROKERS.
	Name string
	// Key is the setting's dotted YAML key, e.g. kafka.brokers.
	Key string
	// Kind describes the accepted value: string, list, int, bool or
	// duration.
	Kind string
}

// EnvVars lists every environment variable Load reads, in the order of the
// configuration file.
func EnvVars() []EnvVar {
	var out []EnvVar
	walkLeaves(reflect.ValueOf(&Config{}).Elem(), "", func(key string, _ reflect.Value, kind string) {
		out = append(out, EnvVar{Name: envName(key), Key: key, Kind: kind})
	})
	return out
}

func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

var durationType = reflect.TypeFor[time.Duration]()

// walkLeaves calls f for every settable leaf of v (a struct) with its
// dotted key and kind. Fields without a YAML name (resolved secrets) are
// skipped.
func walkLeaves(v reflect.Value, prefix string, f func(key string, field reflect.Value, kind string)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		fv := v.Field(i)
		ft := sf.Type
		switch {
		case ft == durationType:
			f(key, fv, "duration")
		case ft.Kind() == reflect.Struct:
			walkLeaves(fv, key, f)
		case ft.Kind() == reflect.String:
			f(key, fv, "string")
		case ft.Kind() == reflect.Bool:
			f(key, fv, "bool")
		case ft.Kind() == reflect.Int:
			f(key, fv, "int")
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Int:
			f(key, fv, "int")
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
			f(key, fv, "list")
		default:
			panic(fmt.Sprintf("config: no environment override for %s (%s)", key, ft))
		}
	}
}

// NonSettingEnv are the variables starting with EnvPrefix that are not
// settings: those of scripts/services.sh, the Makefile, the tests and
// docker-compose.yml. A name ending in "_" stands for every name it
// starts. Load refuses any other EnvPrefix variable that names no setting
// (a misspelt override would otherwise be ignored without a word), except
// the variables the configuration itself names (password_env, key_env).
var NonSettingEnv = []string{
	"CONSENTD_KAFKA_PORT", "CONSENTD_REDIS_PORT", "CONSENTD_STATE", "CONSENTD_CACHE", // scripts/services.sh, Makefile
	"CONSENTD_REQUIRE_INTEGRATION", "CONSENTD_TEST_", // the tests
	"CONSENTD_VERSION", // docker-compose.yml's image tag
}

// checkEnvNames returns an error naming each variable of environ
// ("NAME=value") that starts with EnvPrefix but is no setting's, is not
// in NonSettingEnv and is not named by one of c's *_env settings, with
// the closest setting's variable.
func (c *Config) checkEnvNames(environ []string) error {
	settings := map[string]string{}
	var names []string
	for _, v := range EnvVars() {
		settings[v.Name] = v.Key
		names = append(names, v.Name)
	}
	named := map[string]bool{c.Redis.PasswordEnv: true, c.Redis.SentinelPasswordEnv: true, c.Kafka.SASL.PasswordEnv: true, c.Pseudonymization.KeyEnv: true}
	var errs []error
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || settings[name] != "" || named[name] || nonSetting(name) || serviceLink(name, value) {
			continue
		}
		msg := fmt.Sprintf("$%s matches no setting", name)
		if best := yamlx.Closest(name, names, 6); best != "" {
			msg += fmt.Sprintf(" (did you mean %s, for %s?)", best, settings[best])
		}
		errs = append(errs, errors.New(msg+"; configs/environment.txt lists the variables"))
	}
	return errors.Join(errs...)
}

// serviceLinkName matches the variables Kubernetes puts into every pod
// for each Service of its namespace (enableServiceLinks, on by
// default): a Service named consentd-metrics gives
// CONSENTD_METRICS_SERVICE_HOST, CONSENTD_METRICS_SERVICE_PORT[_NAME],
// CONSENTD_METRICS_PORT=tcp://… and CONSENTD_METRICS_PORT_9464_TCP[_…].
var serviceLinkName = regexp.MustCompile(`_SERVICE_HOST$|_SERVICE_PORT(_[A-Z0-9_]+)?$|_PORT_[0-9]+_(TCP|UDP|SCTP)(_ADDR|_PORT|_PROTO)?$`)

// serviceLink reports a Kubernetes service-link variable: one of
// serviceLinkName's, or NAME_PORT whose value is a tcp://, udp:// or
// sctp:// address.
func serviceLink(name, value string) bool {
	if serviceLinkName.MatchString(name) {
		return true
	}
	return strings.HasSuffix(name, "_PORT") && (strings.HasPrefix(value, "tcp://") || strings.HasPrefix(value, "udp://") || strings.HasPrefix(value, "sctp://"))
}

func nonSetting(name string) bool {
	for _, n := range NonSettingEnv {
		if name == n || strings.HasSuffix(n, "_") && strings.HasPrefix(name, n) {
			return true
		}
	}
	return false
}

// applyEnv sets every leaf whose variable lookup finds, and returns the
// keys it set with the variable's name.
func (c *Config) applyEnv(lookup func(string) (string, bool)) (map[string]string, error) {
	set := map[string]string{}
	var errs []error
	walkLeaves(reflect.ValueOf(c).Elem(), "", func(key string, fv reflect.Value, kind string) {
		name := envName(key)
		raw, ok := lookup(name)
		if !ok {
			return
		}
		if err := setFromEnv(fv, kind, raw); err != nil {
			errs = append(errs, fmt.Errorf("$%s: %s: %w", name, key, err))
			return
		}
		set[key] = name
	})
	return set, errors.Join(errs...)
}

func setFromEnv(fv reflect.Value, kind, raw string) error {
	raw = strings.TrimSpace(raw)
	switch kind {
	case "string":
		fv.SetString(raw)
	case "list":
		var items []string
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		fv.Set(reflect.ValueOf(items))
	case "bool":
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q: want true or false", raw)
		}
		fv.SetBool(b)
	case "duration":
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q: want a duration such as 500ms or 10s", raw)
		}
		fv.SetInt(int64(d))
	case "int":
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q: want an integer", raw)
		}
		if fv.Kind() == reflect.Pointer {
			fv.Set(reflect.ValueOf(&n))
		} else {
			fv.SetInt(int64(n))
		}
	}
	return nil
}

// writtenKeys maps the dotted key of every mapping key written in data to
// its line. data has already been decoded without error.
func writtenKeys(data []byte) map[string]int {
	out := map[string]int{}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return out
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				key := k.Value
				if prefix != "" {
					key = prefix + "." + k.Value
				}
				out[key] = k.Line
				walk(v, key)
			}
		}
	}
	walk(&root, "")
	return out
}
