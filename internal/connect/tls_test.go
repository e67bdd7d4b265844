package connect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/consentd/consentd/config"
)

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	ca := otherCA(t)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := TLSConfig("kafka.tls", config.TLS{})
	if c != nil || err != nil {
		t.Fatalf("off: %v %v", c, err)
	}
	c, err = TLSConfig("kafka.tls", config.TLS{Enabled: true})
	if err != nil || c.RootCAs != nil || c.InsecureSkipVerify {
		t.Fatalf("system roots: %+v %v", c, err)
	}
	c, err = TLSConfig("kafka.tls", config.TLS{Enabled: true, CAFile: ca, ServerName: "kafka.internal"})
	if err != nil || c.RootCAs == nil || c.ServerName != "kafka.internal" {
		t.Fatalf("CA file: %+v %v", c, err)
	}
	bad := []struct {
		name string
		tls  config.TLS
		want string
	}{
		{"missing CA file", config.TLS{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}, "redis.tls.ca_file: open"},
		{"CA file without certificates", config.TLS{Enabled: true, CAFile: notPEM}, "redis.tls.ca_file: " + notPEM + " holds no PEM certificate"},
		{"cert without key", config.TLS{Enabled: true, CertFile: ca}, "redis.tls: set both cert_file and key_file"},
		{"key that does not match", config.TLS{Enabled: true, CertFile: ca, KeyFile: notPEM}, "redis.tls: client certificate"},
	}
	for _, tt := range bad {
		if _, err := TLSConfig("redis.tls", tt.tls); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestKafkaNeverPrintsThePassword(t *testing.T) {
	for _, m := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		k, err := NewKafka(context.Background(), config.Kafka{Brokers: []string{"b:9093"}, TLS: config.TLS{Enabled: true},
			SASL: config.KafkaSASL{Mechanism: m, Username: "svc", Password: "pa55word"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%v", k.Explain(fmt.Errorf("boom")))} {
			if strings.Contains(s, "pa55word") {
				t.Errorf("%s: printed %s", m, s)
			}
		}
		if d := k.Dialer(); d.SASLMechanism == nil || d.SASLMechanism.Name() != m || d.TLS == nil {
			t.Errorf("%s: dialer %+v", m, d)
		}
		if tr := k.Transport(); tr.SASL == nil || tr.SASL.Name() != m || tr.TLS == nil {
			t.Errorf("%s: transport without security", m)
		}
	}
	if _, err := NewKafka(context.Background(), config.Kafka{Brokers: []string{"b:9093"}, SASL: config.KafkaSASL{Mechanism: config.SASLScramSHA512, Username: "svc"}}); err == nil {
		t.Error("an empty password was accepted")
	}
	k, err := NewKafka(context.Background(), config.Kafka{Brokers: []string{"b:9092"}})
	if err != nil || k.Dialer().TLS != nil || k.Dialer().SASLMechanism != nil || k.Transport().TLS != nil {
		t.Fatalf("plaintext: %v", err)
	}
}

func TestNewRedisTopology(t *testing.T) {
	cases := []struct {
		cfg  config.Redis
		want string
	}{
		{config.Redis{Mode: config.RedisSingle, Addr: "127.0.0.1:1"}, "*redis.Client"},
		{config.Redis{Mode: config.RedisSentinel, Addrs: []string{"127.0.0.1:1"}, MasterName: "m"}, "*redis.Client"},
		{config.Redis{Mode: config.RedisCluster, Addrs: []string{"127.0.0.1:1"}}, "*redis.ClusterClient"},
	}
	for _, tt := range cases {
		rdb, err := NewRedis(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%T", rdb); got != tt.want {
			t.Errorf("mode %s: %s, want %s", tt.cfg.Mode, got, tt.want)
		}
		if c, ok := rdb.(*redis.Client); ok && tt.cfg.Mode == config.RedisSentinel && !strings.Contains(c.String(), "sentinel") && !strings.Contains(c.String(), "FailoverClient") {
			t.Logf("sentinel client: %s", c)
		}
		rdb.Close()
	}
	if _, err := NewRedis(config.Redis{Mode: "ring"}); err == nil {
		t.Error("unknown mode accepted")
	}
}
