package connect

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go/sasl"

	"github.com/consentd/consentd/config"
)

// TestMSKIAMSignsWithTheDefaultChain checks the AWS_MSK_IAM payload that a
// broker would verify: signed for kafka-cluster:Connect on the broker's
// host, with the access key and region of the default chain, and without
// the secret key. (No MSK cluster is reachable from the tests.)
func TestMSKIAMSignsWithTheDefaultChain(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDCONSENTDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-key-never-sent")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")

	k, err := NewKafka(context.Background(), config.Kafka{Brokers: []string{"b-1.msk.example:9098"}, TLS: config.TLS{Enabled: true},
		SASL: config.KafkaSASL{Mechanism: config.SASLAWSMSKIAM, AWSRegion: "eu-west-1"}})
	if err != nil {
		t.Fatal(err)
	}
	m := k.Dialer().SASLMechanism
	if m == nil || m.Name() != "AWS_MSK_IAM" {
		t.Fatalf("mechanism %v", m)
	}
	ctx := sasl.WithMetadata(context.Background(), &sasl.Metadata{Host: "b-1.msk.example", Port: 9098})
	_, payload, err := m.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]string
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	if p["action"] != "kafka-cluster:Connect" || p["host"] != "b-1.msk.example" || p["x-amz-signature"] == "" {
		t.Errorf("payload %v", p)
	}
	if cred := p["x-amz-credential"]; !strings.HasPrefix(cred, "AKIDCONSENTDTEST/") || !strings.Contains(cred, "/eu-west-1/kafka-cluster/") {
		t.Errorf("credential scope %q: want the chain's key and the configured region", cred)
	}
	if strings.Contains(string(payload), "secret-key-never-sent") {
		t.Error("the secret key is in the payload")
	}

	// no region anywhere: a clear error
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	_, err = NewKafka(context.Background(), config.Kafka{Brokers: []string{"b:9098"}, TLS: config.TLS{Enabled: true}, SASL: config.KafkaSASL{Mechanism: config.SASLAWSMSKIAM}})
	if err == nil || !strings.Contains(err.Error(), "no region") {
		t.Errorf("without a region: %v", err)
	}
}
