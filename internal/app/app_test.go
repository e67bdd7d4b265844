package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/configs"
	"github.com/consentd/consentd/policy"
)

func TestRunFailsFastOnMissingTopics(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "raw", "dlq", "clean.personalization"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	spec, err := policy.ParseSpec("policy.yaml", configs.Policy)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := policy.NewKeyring(map[string][]byte{"k1": testSecret})
	pol, err := policy.Compile(spec, keys)
	if err != nil {
		t.Fatal(err)
	}
	mr := miniredis.RunT(t)
	cfg := &config.Config{
		Kafka:            config.Kafka{Brokers: cluster.ListenAddrs(), RawTopics: []string{"raw"}, DeadLetterTopic: "dlq"},
		Redis:            config.Redis{Addr: mr.Addr()},
		Admin:            config.Admin{Listen: "127.0.0.1:0", APIListen: "127.0.0.1:0"},
		Policy:           "x",
		Pseudonymization: config.Pseudonymization{KeyEnv: "X"},
	}
	cfg.ApplyDefaults()
	a, err := New(cfg, pol, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "clean.analytics") || !strings.Contains(err.Error(), "clean.advertising") || strings.Contains(err.Error(), "clean.personalization") {
		t.Fatalf("Run = %v, want an error naming exactly the missing topics", err)
	}
}

func TestKeyRetentionCoversTheLongestOutput(t *testing.T) {
	keys, err := policy.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load("../../configs/policy.yaml", keys)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Pseudonymization.Retention = 168 * time.Hour
	if got := KeyRetention(cfg, pol); got != 8760*time.Hour {
		t.Errorf("shipped policy (analytics kept 8760h): key retention %s, want 8760h", got)
	}
	cfg.Pseudonymization.Retention = 10000 * time.Hour
	if got := KeyRetention(cfg, pol); got != 10000*time.Hour {
		t.Errorf("a longer pseudonymization.retention: %s, want 10000h", got)
	}
}
