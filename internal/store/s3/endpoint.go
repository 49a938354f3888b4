package s3

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
)

// The SDK resolves the endpoint of every request by running S3's endpoint
// rules, twice: once to choose the auth scheme, once to set the URL. For a
// store with an explicit endpoint (MinIO and other S3-compatible servers,
// path style) the answer only ever depends on the bucket and the region,
// yet the rules cost about a tenth of the SDK's CPU per request.
// memoResolver runs the SDK's own resolver once per distinct set of
// parameters and answers the same parameters again from memory, so the URL,
// signing name and region and every other property stay exactly the SDK's.
// Stores without an explicit endpoint (AWS: regions, FIPS, dual-stack,
// virtual-hosted buckets) keep the SDK's resolver as it is.

// maxMemoEndpoints bounds the answers a memoResolver keeps: a Store uses
// one bucket and region, a client shared by tools a few more. Past it the
// SDK's resolver answers every new parameter set.
const maxMemoEndpoints = 64

// memoResolver answers [s3.EndpointParameters] it has seen from memory, and
// asks next otherwise.
type memoResolver struct {
	next s3.EndpointResolverV2
	mu   sync.RWMutex
	memo map[endpointKey]smithyendpoints.Endpoint
}

var _ s3.EndpointResolverV2 = (*memoResolver)(nil)

func newMemoResolver(next s3.EndpointResolverV2) *memoResolver {
	return &memoResolver{next: next, memo: map[endpointKey]smithyendpoints.Endpoint{}}
}

// ResolveEndpoint returns next's endpoint for p, from memory when p was
// resolved before. Every answer is a copy that the caller may change (the
// SDK merges the auth options it returns in place).
func (r *memoResolver) ResolveEndpoint(ctx context.Context, p s3.EndpointParameters) (smithyendpoints.Endpoint, error) {
	k := keyOf(&p)
	r.mu.RLock()
	e, ok := r.memo[k]
	r.mu.RUnlock()
	if ok {
		return copyEndpoint(e), nil
	}
	e, err := r.next.ResolveEndpoint(ctx, p)
	if err != nil {
		return e, err
	}
	r.mu.Lock()
	if len(r.memo) < maxMemoEndpoints {
		r.memo[k] = copyEndpoint(e)
	}
	r.mu.Unlock()
	return e, nil
}

// endpointKey is the value of every [s3.EndpointParameters] field that S3's
// endpoint rules read: all but Key, Prefix and CopySource, which the rules
// declare and never use (TestMemoResolverKey checks both).
type endpointKey struct {
	bucket, region, endpoint              string
	hasBucket, hasRegion, hasEndpoint     bool
	useFIPS, useDualStack, forcePathStyle tristate
	accelerate, useGlobalEndpoint         tristate
	useObjectLambdaEndpoint               tristate
	disableAccessPoints                   tristate
	disableMultiRegionAccessPoints        tristate
	useArnRegion                          tristate
	useS3ExpressControlEndpoint           tristate
	disableS3ExpressSessionAuth           tristate
}

// tristate is a *bool as a value: unset, false or true.
type tristate int8

func tri(b *bool) tristate {
	switch {
	case b == nil:
		return 0
	case *b:
		return 2
	}
	return 1
}

func str(s *string) (string, bool) {
	if s == nil {
		return "", false
	}
	return *s, true
}

func keyOf(p *s3.EndpointParameters) endpointKey {
	k := endpointKey{
		useFIPS:                        tri(p.UseFIPS),
		useDualStack:                   tri(p.UseDualStack),
		forcePathStyle:                 tri(p.ForcePathStyle),
		accelerate:                     tri(p.Accelerate),
		useGlobalEndpoint:              tri(p.UseGlobalEndpoint),
		useObjectLambdaEndpoint:        tri(p.UseObjectLambdaEndpoint),
		disableAccessPoints:            tri(p.DisableAccessPoints),
		disableMultiRegionAccessPoints: tri(p.DisableMultiRegionAccessPoints),
		useArnRegion:                   tri(p.UseArnRegion),
		useS3ExpressControlEndpoint:    tri(p.UseS3ExpressControlEndpoint),
		disableS3ExpressSessionAuth:    tri(p.DisableS3ExpressSessionAuth),
	}
	k.bucket, k.hasBucket = str(p.Bucket)
	k.region, k.hasRegion = str(p.Region)
	k.endpoint, k.hasEndpoint = str(p.Endpoint)
	return k
}

// copyEndpoint returns a copy of e that shares nothing the SDK changes: its
// own headers, properties and auth options (URI is a value; its Userinfo
// is immutable). No headers are nil headers: the SDK only ranges over them.
func copyEndpoint(e smithyendpoints.Endpoint) smithyendpoints.Endpoint {
	out := smithyendpoints.Endpoint{URI: e.URI}
	if len(e.Headers) > 0 {
		out.Headers = e.Headers.Clone()
	}
	out.Properties.SetAll(&e.Properties)
	if opts, ok := smithyauth.GetAuthOptions(&e.Properties); ok {
		cp := make([]*smithyauth.Option, len(opts))
		for i, o := range opts {
			c := &smithyauth.Option{SchemeID: o.SchemeID}
			c.IdentityProperties = copyProperties(&o.IdentityProperties)
			c.SignerProperties = copyProperties(&o.SignerProperties)
			cp[i] = c
		}
		smithyauth.SetAuthOptions(&out.Properties, cp)
	}
	return out
}

func copyProperties(p *smithy.Properties) smithy.Properties {
	var out smithy.Properties
	out.SetAll(p)
	return out
}
