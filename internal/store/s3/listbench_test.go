package s3

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"github.com/minio/minio-go/v7"
	mcreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// listPage is a ListObjectsV2 answer with n keys in 50 directories, as
// MinIO writes it (URL-encoded keys, an Owner per key).
func listPage(n int) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bench</Name><Prefix>p%2F</Prefix><KeyCount>` + strconv.Itoa(n) + `</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>`)
	for i := range n {
		fmt.Fprintf(&b, `<Contents><Key>p%%2Fdir%03d%%2Fobject-%06d.bin</Key><LastModified>2026-11-30T12:00:00.000Z</LastModified><ETag>&#34;0123456789abcdef0123456789abcdef&#34;</ETag><Size>4096</Size><Owner><ID>02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4</ID><DisplayName>minio</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents>`, i%50, i)
	}
	b.WriteString(`</ListBucketResult>`)
	return []byte(b.String())
}

// BenchmarkListDecode measures the client's cost of one ListObjectsV2 page
// of 1,000 keys, answered without a connection: "fast" is ferry's client
// (fastdecode.go), "sdk" the same client with the SDK's decoder, "minio"
// minio-go's Core.ListObjectsV2 (measured: it is no faster than the SDK).
//
//	go test ./internal/store/s3 -run '^$' -bench ListDecode -benchmem
func BenchmarkListDecode(b *testing.B) {
	page := listPage(1000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	})
	s, err := Open(b.Context(), Config{Bucket: "bench", Prefix: "p", Endpoint: "http://127.0.0.1:1", Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "secretbench", "")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	lim := s.client.Options().HTTPClient.(*limitedClient).lim
	fast := s3.New(s.client.Options(), func(o *s3.Options) { o.HTTPClient = &limitedClient{next: directClient{h}, lim: lim} })
	sdk := s3.New(s.client.Options(), func(o *s3.Options) {
		o.HTTPClient = &limitedClient{next: directClient{h}, lim: lim}
		o.APIOptions = []func(*middleware.Stack) error{trimStack}
	})
	for name, c := range map[string]*s3.Client{"fast": fast, "sdk": sdk} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b, cpuTime(b))
			for b.Loop() {
				out, err := c.ListObjectsV2(b.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("bench"), Prefix: aws.String("p/"), EncodingType: "url"})
				if err != nil || len(out.Contents) != 1000 {
					b.Fatalf("ListObjectsV2: %d keys, %v", len(out.Contents), err)
				}
			}
		})
	}
	mc, err := minio.New("127.0.0.1:1", &minio.Options{Creds: mcreds.NewStaticV4("AKIDBENCH", "secretbench", ""), Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath, Transport: roundTripper{directClient{h}}})
	if err != nil {
		b.Fatal(err)
	}
	core := minio.Core{Client: mc}
	b.Run("minio", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime(b))
		for b.Loop() {
			out, err := core.ListObjectsV2("bench", "p/", "", "", "", 1000)
			if err != nil || len(out.Contents) != 1000 {
				b.Fatalf("ListObjectsV2: %d keys, %v", len(out.Contents), err)
			}
		}
	})
}
