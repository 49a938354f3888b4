package testenv

import (
	"strings"
	"testing"
)

func TestRawListKeys(t *testing.T) {
	const encoded = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>d%2F</Prefix><StartAfter>d%2Fa+b</StartAfter><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>%2F</Delimiter><IsTruncated>false</IsTruncated><Contents><Key>d%2Fplus%2Bkey+100%25%09%C3%A9%26%3C</Key><ETag>&#34;x&#34;</ETag></Contents><CommonPrefixes><Prefix>d%2Fsub%2F</Prefix></CommonPrefixes><EncodingType>url</EncodingType></ListBucketResult>`
	const raw = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>d/</Prefix><StartAfter>d/a b</StartAfter><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated><Contents><Key>d/plus+key 100%&#x9;é&amp;&lt;</Key><ETag>&#34;x&#34;</ETag></Contents><CommonPrefixes><Prefix>d/sub/</Prefix></CommonPrefixes></ListBucketResult>`
	got, err := RawListKeys([]byte(encoded))
	if err != nil || string(got) != raw {
		t.Errorf("RawListKeys =\n%s, %v\nwant\n%s", got, err, raw)
	}
	got, err = MislabeledListKeys([]byte(encoded))
	if want := strings.Replace(raw, "</ListBucketResult>", "<EncodingType>url</EncodingType></ListBucketResult>", 1); err != nil || string(got) != want {
		t.Errorf("MislabeledListKeys =\n%s, %v\nwant\n%s", got, err, want)
	}
	// Without EncodingType url the keys are raw already.
	if got, err := RawListKeys([]byte(raw)); err != nil || string(got) != raw {
		t.Errorf("RawListKeys(raw) = %s, %v", got, err)
	}
	if _, err := RawListKeys([]byte(`<Key>100%</Key><EncodingType>url</EncodingType>`)); err == nil || !strings.Contains(err.Error(), `Key "100%"`) {
		t.Errorf("RawListKeys of an undecodable key: %v", err)
	}
}
