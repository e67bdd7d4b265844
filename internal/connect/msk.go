package connect

import (
	"context"
	"errors"
	"fmt"

	signer "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/aws_msk_iam_v2"
)

// mskIAM returns the AWS_MSK_IAM mechanism: each connection is signed
// (SigV4) with credentials from the AWS default chain (environment, shared
// files, web identity as on EKS, container or instance role), refreshed as
// they expire. region defaults to the chain's (AWS_REGION).
func mskIAM(ctx context.Context, region string) (sasl.Mechanism, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS_MSK_IAM: loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("AWS_MSK_IAM: no region: set kafka.sasl.aws_region or AWS_REGION")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("AWS_MSK_IAM: the AWS default chain found no credentials")
	}
	return &aws_msk_iam_v2.Mechanism{Signer: signer.NewSigner(), Credentials: cfg.Credentials, Region: cfg.Region}, nil
}
