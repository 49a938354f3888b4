package policy

import (
	"encoding/json"
	"strings"

	"github.com/ferry-dev/ferry/internal/location"
)

// Version is the IAM policy language version.
const Version = "2012-10-17"

// Job describes what a ferry command will do. The zero value of each
// optional field means "not used".
type Job struct {
	Src, Dst location.Location
	// CopyTags is set when object tags are copied (ferry always does).
	CopyTags bool
	// Delete is set for sync --delete.
	Delete bool
	// SSE and SSEKMSKeyID are the destination encryption flags.
	SSE, SSEKMSKeyID string
	// DstRegion scopes a bare KMS key ID to a region; "" is any region.
	DstRegion string
	// Preflight grants the posture reads of the automatic preflight.
	Preflight bool
	// CheckRegion grants s3:GetBucketLocation on the destination, for
	// --allowed-regions.
	CheckRegion bool
	// Partition is the ARN partition; "" is "aws".
	Partition string
	// SrcMayBeObject and DstMayBeObject are set when a side was written
	// without a trailing "/" (s3://b/dir/photo.jpg): ferry then copies the
	// single object of that name when it exists, so the statements cover
	// that key as well as the prefix below it.
	SrcMayBeObject, DstMayBeObject bool
}

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string                         `json:"Sid"`
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// JSON returns the document indented, with a final newline.
func (d Document) JSON() []byte {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		panic(err) // only strings, slices and maps: cannot fail
	}
	return append(b, '\n')
}

// For returns the minimal policy for j. Both sides local gives a document
// without statements.
func For(j Job) Document {
	part := j.Partition
	if part == "" {
		part = "aws"
	}
	bucketARN := func(l location.Location) string { return "arn:" + part + ":s3:::" + l.Bucket }
	objectsARN := func(l location.Location, object bool) []string {
		r := []string{bucketARN(l) + "/" + l.Prefix + "*"}
		if object && l.Prefix != "" {
			r = append([]string{bucketARN(l) + "/" + strings.TrimSuffix(l.Prefix, "/")}, r...)
		}
		return r
	}
	list := func(sid string, l location.Location, object bool) Statement {
		s := Statement{Sid: sid, Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{bucketARN(l)}}
		if l.Prefix != "" {
			prefixes := []string{l.Prefix + "*"}
			if object {
				prefixes = append([]string{strings.TrimSuffix(l.Prefix, "/")}, prefixes...)
			}
			s.Condition = map[string]map[string][]string{"StringLike": {"s3:prefix": prefixes}}
		}
		return s
	}

	d := Document{Version: Version, Statement: []Statement{}}
	if j.Src.Kind == location.S3 {
		read := []string{"s3:GetObject"}
		if j.CopyTags {
			read = append(read, "s3:GetObjectTagging")
		}
		d.Statement = append(d.Statement,
			list("SourceList", j.Src, j.SrcMayBeObject),
			Statement{Sid: "SourceRead", Effect: "Allow", Action: read, Resource: objectsARN(j.Src, j.SrcMayBeObject)},
		)
	}
	if j.Dst.Kind == location.S3 {
		bucket := []string{"s3:ListBucketMultipartUploads"}
		if j.CheckRegion {
			bucket = append(bucket, "s3:GetBucketLocation")
		}
		if j.Preflight {
			bucket = append(bucket, "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration", "s3:GetBucketPolicy", "s3:GetBucketVersioning", "s3:GetLifecycleConfiguration")
		}
		write := []string{"s3:GetObject", "s3:PutObject"}
		if j.CopyTags {
			write = append(write, "s3:PutObjectTagging")
		}
		write = append(write, "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
		if j.Delete {
			write = append(write, "s3:DeleteObject")
		}
		d.Statement = append(d.Statement,
			list("DestinationList", j.Dst, j.DstMayBeObject),
			Statement{Sid: "DestinationBucket", Effect: "Allow", Action: bucket, Resource: []string{bucketARN(j.Dst)}},
			Statement{Sid: "DestinationWrite", Effect: "Allow", Action: write, Resource: objectsARN(j.Dst, j.DstMayBeObject)},
		)
		if j.SSE == "aws:kms" && j.SSEKMSKeyID != "" {
			d.Statement = append(d.Statement, kmsStatement(part, j.DstRegion, j.SSEKMSKeyID))
		}
	}
	return d
}

// kmsStatement grants the use of a customer managed key for SSE-KMS: S3
// asks KMS for a data key on every write and decrypts it to complete
// multipart uploads and to read objects back.
func kmsStatement(part, region, key string) Statement {
	s := Statement{Sid: "DestinationKMS", Effect: "Allow", Action: []string{"kms:Decrypt", "kms:GenerateDataKey"}}
	switch {
	case strings.HasPrefix(key, "arn:"):
		s.Resource = []string{key}
	case strings.HasPrefix(key, "alias/"):
		// Permissions are checked on the key, not the alias: allow any key
		// that the alias names.
		s.Resource = []string{"*"}
		s.Condition = map[string]map[string][]string{"ForAnyValue:StringEquals": {"kms:ResourceAliases": {key}}}
	default:
		if region == "" {
			region = "*"
		}
		s.Resource = []string{"arn:" + part + ":kms:" + region + ":*:key/" + key}
	}
	return s
}
