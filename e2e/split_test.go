package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestSplitDeployment runs the deployment of the README's "across machines"
// section on one machine: `glimpse api` and two `glimpse worker` processes
// against a three-node JetStream cluster (R3), S3 (versitygw) and
// PostgreSQL, driven over HTTP, plus recognition started by an S3 event
// notification published on the jobs subject.
func TestSplitDeployment(t *testing.T) {
	pg := postgresSchema(t)
	cl := startNATSCluster(t, 3)
	gw := startVersityGW(t)
	dir := t.TempDir()
	engines := []string{
		"--queue", cl.URLs(), "--replicas", "3",
		"--db", pg.url, "--blob", gw.blobURL(), "--data", dir,
	}
	api := startAPIRole(t, gw.env, engines...)
	var workers []*role
	for i := range 2 {
		args := append([]string{"--workers", "1"}, engines...)
		workers = append(workers, startWorkerRole(t, fmt.Sprintf("glimpse worker %d", i+1), gw.env, args...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	chelsea := readPhoto(t, "chelsea.png")

	var coffeeID string
	t.Run("photos", func(t *testing.T) {
		var cat imageView
		resp := uploadRaw(t, api.URL, "?wait=60s&filename=chelsea.png", "image/png", chelsea, &cat)
		if resp.StatusCode != 200 || cat.Status != "done" || cat.Result == nil || len(cat.Result.Labels) == 0 {
			t.Fatalf("POST chelsea with wait = %d %+v; want 200 done with labels", resp.StatusCode, cat)
		}
		if got := cat.Result.Labels[0].Label; got != "Egyptian cat" {
			t.Errorf("chelsea top-1 = %q; want Egyptian cat (labels %+v)", got, cat.Result.Labels)
		}
		var coffee imageView
		resp = uploadRaw(t, api.URL, "?wait=60s&filename=coffee.png", "image/png", readPhoto(t, "coffee.png"), &coffee)
		if resp.StatusCode != 200 || coffee.Status != "done" || coffee.Result == nil || len(coffee.Result.Labels) == 0 {
			t.Fatalf("POST coffee with wait = %d %+v; want 200 done with labels", resp.StatusCode, coffee)
		}
		if got := coffee.Result.Labels[0].Label; got != "espresso" {
			t.Errorf("coffee top-1 = %q; want espresso", got)
		}
		coffeeID = coffee.ID

		list := listImages(t, api.URL, "")
		if len(list) != 2 || list[0].ID != coffee.ID || list[1].ID != cat.ID {
			t.Errorf("list = %+v; want coffee then chelsea", list)
		}
		if l := listImages(t, api.URL, "?label=Egyptian+cat"); len(l) != 1 || l[0].ID != cat.ID {
			t.Errorf("label=Egyptian cat lists %+v; want only %s", l, cat.ID)
		}

		// The bytes round-trip, and they and the result really are in S3.
		req, _ := http.NewRequest("GET", api.URL+"/v1/images/"+cat.ID+"/content", nil)
		resp = do(t, req, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Equal(body, chelsea) || resp.Header.Get("Content-Type") != "image/png" {
			t.Errorf("content = %d, %d bytes of %q; want the original %d-byte PNG",
				resp.StatusCode, len(body), resp.Header.Get("Content-Type"), len(chelsea))
		}
		inputKey, resultKey := "inputs/default/"+cat.ID, "results/"+cat.ID+".json"
		if b := gw.get(ctx, t, inputKey); !bytes.Equal(b, chelsea) {
			t.Errorf("S3 %s holds %d bytes; want the %d uploaded", inputKey, len(b), len(chelsea))
		}
		var doc struct {
			ID       string `json:"id"`
			Filename string `json:"filename"`
		}
		if err := json.Unmarshal(gw.get(ctx, t, resultKey), &doc); err != nil || doc.ID != cat.ID || doc.Filename != "chelsea.png" {
			t.Errorf("S3 %s = %+v (%v); want the result of %s", resultKey, doc, err, cat.ID)
		}

		req, _ = http.NewRequest("DELETE", api.URL+"/v1/images/"+cat.ID, nil)
		if resp := do(t, req, nil); resp.StatusCode != 204 {
			t.Fatalf("DELETE = %d; want 204", resp.StatusCode)
		}
		req, _ = http.NewRequest("GET", api.URL+"/v1/images/"+cat.ID, nil)
		if resp := do(t, req, nil); resp.StatusCode != 404 {
			t.Errorf("GET after DELETE = %d; want 404", resp.StatusCode)
		}
		for _, key := range []string{inputKey, resultKey} {
			if gw.exists(ctx, t, key) {
				t.Errorf("S3 still holds %s after DELETE", key)
			}
		}
		if n := pg.count(t, "images"); n != 1 {
			t.Errorf("PostgreSQL holds %d image rows; want 1 (coffee)", n)
		}
	})

	// Sending deleted bytes again is a new upload: it must be recognised
	// again, not left queued behind the first upload's job.
	t.Run("reupload after delete", func(t *testing.T) {
		var cat imageView
		resp := uploadRaw(t, api.URL, "?wait=60s&filename=chelsea.png", "image/png", chelsea, &cat)
		if resp.StatusCode != 200 || cat.Status != "done" {
			t.Errorf("POST chelsea again after DELETE = %d, status %q; want 200 done", resp.StatusCode, cat.Status)
		}
		if cat.ID == "" {
			return
		}
		req, _ := http.NewRequest("DELETE", api.URL+"/v1/images/"+cat.ID, nil)
		if resp := do(t, req, nil); resp.StatusCode != 204 {
			t.Errorf("DELETE = %d; want 204", resp.StatusCode)
		}
	})

	t.Run("s3 event", func(t *testing.T) {
		// A cat the API has never seen: chelsea with one pixel changed.
		cat := tweakPNG(t, chelsea)
		gw.put(ctx, t, "inputs/default/cat.png", cat, "image/png")
		gw.put(ctx, t, "elsewhere/cat.png", cat, "image/png")

		nc, err := nats.Connect(cl.URLs())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		// What S3 or MinIO would publish: first for a key outside inputs/
		// (ignored), then the same creation twice (one image).
		events := [][]byte{
			s3Event(gw.bucket, "elsewhere/cat.png", len(cat)),
			s3Event(gw.bucket, "inputs/default/cat.png", len(cat)),
			s3Event(gw.bucket, "inputs/default/cat.png", len(cat)),
		}
		for _, ev := range events {
			if _, err := js.Publish(ctx, "glimpse.jobs.s3", ev); err != nil {
				t.Fatalf("publish event: %v", err)
			}
		}

		var got imageView
		checkFor(t, 2*time.Minute, 100*time.Millisecond, func() error {
			for _, im := range listImages(t, api.URL, "") {
				if im.ID != coffeeID && im.Status == "done" {
					got = im
					return nil
				}
			}
			return errors.New("no image from the S3 event is done yet")
		})
		// Every event has been handled once the queue is empty.
		checkFor(t, time.Minute, 50*time.Millisecond, func() error { return queueDrained(ctx, js) })

		var fromEvent []imageView
		for _, im := range listImages(t, api.URL, "") {
			if im.ID != coffeeID {
				fromEvent = append(fromEvent, im)
			}
		}
		if len(fromEvent) != 1 {
			t.Fatalf("%d images besides coffee after three events: %+v; want exactly 1", len(fromEvent), fromEvent)
		}
		got = getImage(t, api.URL, got.ID)
		if got.Filename != "cat.png" || got.Result == nil || len(got.Result.Labels) == 0 || got.Result.Labels[0].Label != "Egyptian cat" {
			t.Errorf("image from the event = %+v; want cat.png done, top label Egyptian cat", got)
		}
		req, _ := http.NewRequest("GET", api.URL+"/v1/images/"+got.ID+"/content", nil)
		body, _ := io.ReadAll(do(t, req, nil).Body)
		if !bytes.Equal(body, cat) {
			t.Errorf("content of the event's image: %d bytes; want the %d put in S3", len(body), len(cat))
		}
		if n := pg.count(t, "images"); n != 2 {
			t.Errorf("PostgreSQL holds %d image rows; want 2 (coffee and the event's cat)", n)
		}
	})

	for _, p := range append([]*role{api}, workers...) {
		if !p.running() {
			t.Errorf("%s exited: %v", p.name, p.err)
		}
	}
	resp, err := httpClient.Get(api.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("readyz = %d at the end; want 200", resp.StatusCode)
	}
}

// listImages returns the first page of GET /v1/images with query.
func listImages(t *testing.T, base, query string) []imageView {
	t.Helper()
	var page struct {
		Images []imageView `json:"images"`
	}
	req, _ := http.NewRequest("GET", base+"/v1/images"+query, nil)
	if resp := do(t, req, &page); resp.StatusCode != 200 {
		t.Fatalf("GET /v1/images%s = %d", query, resp.StatusCode)
	}
	return page.Images
}

// s3Event is an S3 event notification for the creation of key, as S3 and
// MinIO publish it.
func s3Event(bucket, key string, size int) []byte {
	type object struct {
		Key  string `json:"key"`
		Size int    `json:"size"`
		ETag string `json:"eTag"`
	}
	type record struct {
		EventVersion string `json:"eventVersion"`
		EventSource  string `json:"eventSource"`
		AWSRegion    string `json:"awsRegion"`
		EventTime    string `json:"eventTime"`
		EventName    string `json:"eventName"`
		S3           struct {
			SchemaVersion string `json:"s3SchemaVersion"`
			Bucket        struct {
				Name string `json:"name"`
				ARN  string `json:"arn"`
			} `json:"bucket"`
			Object object `json:"object"`
		} `json:"s3"`
	}
	r := record{EventVersion: "2.1", EventSource: "aws:s3", AWSRegion: "us-east-1",
		EventTime: time.Now().UTC().Format(time.RFC3339Nano), EventName: "ObjectCreated:Put"}
	r.S3.SchemaVersion = "1.0"
	r.S3.Bucket.Name, r.S3.Bucket.ARN = bucket, "arn:aws:s3:::"+bucket
	r.S3.Object = object{Key: key, Size: size}
	b, _ := json.Marshal(map[string][]record{"Records": {r}})
	return b
}

// tweakPNG decodes a PNG, nudges one pixel and encodes it again: the same
// picture as far as any model is concerned, but bytes never seen before.
func tweakPNG(t *testing.T, b []byte) []byte {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rgba := image.NewRGBA(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			rgba.Set(x, y, img.At(x, y))
		}
	}
	p := rgba.RGBAAt(0, 0)
	rgba.SetRGBA(0, 0, color.RGBA{p.R ^ 1, p.G, p.B, 255})
	var out bytes.Buffer
	if err := png.Encode(&out, rgba); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// pgSchema is a fresh PostgreSQL schema for one test, dropped at the end.
type pgSchema struct {
	url    string // the DSN Glimpse gets, with the schema as search_path
	schema string
	db     *sql.DB
}

// postgresSchema checks that the machine's PostgreSQL (127.0.0.1:5432,
// database test, user postgres, trust) is up and returns a DSN for a schema
// of this test's own, which the store creates and the cleanup drops.
func postgresSchema(t *testing.T) *pgSchema {
	t.Helper()
	const base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	if c, err := net.DialTimeout("tcp", "127.0.0.1:5432", 2*time.Second); err != nil {
		missing(t, "PostgreSQL on 127.0.0.1:5432", "start the machine's PostgreSQL (database test, user postgres, trust auth)")
	} else {
		c.Close()
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		missing(t, "PostgreSQL database test for user postgres", err.Error())
	}
	s := &pgSchema{schema: "glimpse_e2e_" + strconv.FormatUint(rand.Uint64()%1e12, 36), db: db}
	s.url = base + "&search_path=" + s.schema
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA IF EXISTS ` + s.schema + ` CASCADE`); err != nil {
			t.Logf("drop schema %s: %v", s.schema, err)
		}
		db.Close()
	})
	return s
}

// count returns the number of rows in the schema's table.
func (s *pgSchema) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM ` + s.schema + `.` + table).Scan(&n); err != nil {
		t.Fatalf("count %s.%s: %v", s.schema, table, err)
	}
	return n
}

// versityGW is a versitygw S3 server (posix backend in a temp dir) with one
// bucket.
type versityGW struct {
	endpoint string
	bucket   string
	env      []string // what Glimpse's processes need to reach it
	client   *s3.Client
}

const (
	gwAccessKey = "glimpse-e2e"
	gwSecretKey = "glimpse-e2e-secret-key"
)

// startVersityGW starts .deps/bin/versitygw on a free loopback port and
// creates the bucket.
func startVersityGW(t *testing.T) *versityGW {
	t.Helper()
	bin := depBin(t, "versitygw")
	root := t.TempDir()
	none := filepath.Join(t.TempDir(), "none")
	gw := &versityGW{bucket: "glimpse", env: []string{
		"AWS_ACCESS_KEY_ID=" + gwAccessKey, "AWS_SECRET_ACCESS_KEY=" + gwSecretKey,
		"AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
	}}
	// A port that was free can be taken before versitygw binds it: try a
	// few.
	for try := 0; ; try++ {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		p := startProc(t, "versitygw", nil, bin,
			"--access", gwAccessKey, "--secret", gwSecretKey, "--port", addr, "posix", root)
		var up bool
		checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			if !p.running() {
				return nil
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			c.Close()
			up = true
			return nil
		})
		if up {
			gw.endpoint = "http://" + addr
			break
		}
		if try == 2 {
			t.Fatalf("versitygw would not start: %v\n%s", p.err, p.logs)
		}
	}
	gw.client = s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(gw.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(gwAccessKey, gwSecretKey, ""),
	})
	if _, err := gw.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(gw.bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return gw
}

// blobURL is the --blob URL of the bucket.
func (gw *versityGW) blobURL() string {
	return "s3://" + gw.bucket + "?endpoint=" + gw.endpoint + "&region=us-east-1&use_path_style=true"
}

func (gw *versityGW) put(ctx context.Context, t *testing.T, key string, b []byte, contentType string) {
	t.Helper()
	_, err := gw.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(gw.bucket), Key: aws.String(key), Body: bytes.NewReader(b), ContentType: aws.String(contentType),
	})
	if err != nil {
		t.Fatalf("S3 put %s: %v", key, err)
	}
}

func (gw *versityGW) get(ctx context.Context, t *testing.T, key string) []byte {
	t.Helper()
	out, err := gw.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(gw.bucket), Key: aws.String(key)})
	if err != nil {
		t.Errorf("S3 get %s: %v", key, err)
		return nil
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Errorf("S3 get %s: %v", key, err)
	}
	return b
}

func (gw *versityGW) exists(ctx context.Context, t *testing.T, key string) bool {
	t.Helper()
	_, err := gw.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(gw.bucket), Key: aws.String(key)})
	var nf *s3types.NotFound
	switch {
	case err == nil:
		return true
	case errors.As(err, &nf):
		return false
	default:
		t.Fatalf("S3 head %s: %v", key, err)
		return false
	}
}
