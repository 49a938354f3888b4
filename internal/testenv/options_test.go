package testenv

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestMinIORegionAndKMS(t *testing.T) {
	m := StartMinIO(t, MinIOOptions{TLS: true, Region: "eu-west-3", KMS: true})
	if m.Region != "eu-west-3" || m.KMSKeyID == "" {
		t.Fatalf("region %q key %q", m.Region, m.KMSKeyID)
	}
	m.CreateBucket(t, "regional")
	ctx := context.Background()
	loc, err := m.Client().GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("regional")})
	if err != nil || string(loc.LocationConstraint) != "eu-west-3" {
		t.Fatalf("GetBucketLocation: %v %v", loc, err)
	}
	for _, tc := range []struct {
		sse types.ServerSideEncryption
		key *string
	}{{types.ServerSideEncryptionAes256, nil}, {types.ServerSideEncryptionAwsKms, aws.String(m.KMSKeyID)}} {
		k := "obj-" + string(tc.sse)
		if _, err := m.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("regional"), Key: aws.String(k),
			Body: bytes.NewReader([]byte("x")), ServerSideEncryption: tc.sse, SSEKMSKeyId: tc.key}); err != nil {
			t.Fatalf("put %s: %v", tc.sse, err)
		}
		h, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("regional"), Key: aws.String(k)})
		if err != nil || h.ServerSideEncryption != tc.sse {
			t.Fatalf("head %s: %v %v", k, h.ServerSideEncryption, err)
		}
	}
}
