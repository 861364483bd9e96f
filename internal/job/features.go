package job

// The answers of the analyzers beyond labels. Each is one field of Result,
// present only when its feature was asked for and its analyzer succeeded.

// Point is a position in display pixels (after EXIF orientation), origin at
// the top-left corner.
type Point struct {
	X float64 `json:"x" example:"1210"`
	Y float64 `json:"y" example:"2388"`
}

// URLParts is a QR code's text parsed as a URL.
type URLParts struct {
	Scheme string `json:"scheme" example:"https"`
	Host   string `json:"host" doc:"Host, with the port when the URL names one" example:"shop.example"`
	Path   string `json:"path" example:"/p/42"`
	Query  string `json:"query,omitempty" example:"src=label"`
}

// Code is one QR code (or 1-D barcode) found in an image.
type Code struct {
	Text   string    `json:"text" doc:"Decoded text" example:"https://shop.example/p/42"`
	Format string    `json:"format" doc:"Symbology, e.g. QR_CODE, EAN_13, CODE_128" example:"QR_CODE"`
	Points []Point   `json:"points,omitempty" doc:"Corner or finder-pattern points in display pixels"`
	URL    *URLParts `json:"url,omitempty" doc:"Text parsed as a URL, when it is one"`
}

// EXIF is when, where and with what a photo was taken. Absent fields are
// absent, never zero.
type EXIF struct {
	TakenAt     string   `json:"taken_at,omitempty" doc:"DateTimeOriginal: RFC 3339 when the photo records its UTC offset, else local time without an offset (2024-05-17T14:03:11)" example:"2024-05-17T14:03:11+02:00"`
	Latitude    *float64 `json:"latitude,omitempty" doc:"Signed decimal degrees, north positive" example:"48.8584"`
	Longitude   *float64 `json:"longitude,omitempty" doc:"Signed decimal degrees, east positive" example:"2.2945"`
	Altitude    *float64 `json:"altitude,omitempty" doc:"Metres above sea level (negative below)" example:"35"`
	Make        string   `json:"make,omitempty" example:"Canon"`
	Model       string   `json:"model,omitempty" example:"Canon EOS 5D"`
	Orientation int      `json:"orientation,omitempty" doc:"EXIF orientation 1..8" example:"6"`
}

// Face is one detected face, a box in display pixels.
type Face struct {
	X          int     `json:"x" doc:"Left edge in display pixels" example:"212"`
	Y          int     `json:"y" doc:"Top edge in display pixels" example:"84"`
	W          int     `json:"w" doc:"Width in display pixels" example:"126"`
	H          int     `json:"h" doc:"Height in display pixels" example:"126"`
	Confidence float64 `json:"confidence" doc:"Detector score (the default threshold is 10); higher is surer" example:"64.2"`
}

// Swatch is one dominant colour and the share of the image it covers.
type Swatch struct {
	Hex      string  `json:"hex" example:"#3a5f8c"`
	Fraction float64 `json:"fraction" doc:"Share of pixels in [0,1]" example:"0.31"`
}

// Colors summarises an image's colour.
type Colors struct {
	Dominant   []Swatch `json:"dominant" doc:"Dominant colours, largest share first"`
	Brightness float64  `json:"brightness" doc:"Mean luma in [0,1]" example:"0.62"`
	Saturation float64  `json:"saturation" doc:"Mean HSV saturation in [0,1]" example:"0.21"`
	// Histogram is a 16-bin luma histogram, each bin a share of pixels.
	Histogram []float64 `json:"histogram" doc:"16-bin luma histogram, shares summing to 1"`
}

// Quality holds the measures the original OpenCV analysis service returned.
type Quality struct {
	Sharpness    float64 `json:"sharpness" doc:"Variance of the Laplacian on a ~1000 px grey copy; higher is sharper" example:"812.4"`
	Blurry       bool    `json:"blurry" doc:"Sharpness below the blur threshold (default 100), unless high for the photo's contrast (a sharp but dim or flat photo)"`
	Contrast     float64 `json:"contrast" doc:"RMS contrast: standard deviation of luma in [0,1]" example:"0.27"`
	Entropy      float64 `json:"entropy" doc:"Shannon entropy of the luma histogram in bits (0..8)" example:"7.31"`
	Exposure     string  `json:"exposure" doc:"under when a quarter of the pixels are near-black or the mean luma is below 0.15, over likewise for near-white or above 0.85, else ok" enum:"under,over,ok"`
	Underexposed float64 `json:"underexposed" doc:"Share of near-black pixels" example:"0.03"`
	Overexposed  float64 `json:"overexposed" doc:"Share of near-white pixels" example:"0.01"`
	Megapixels   float64 `json:"megapixels" doc:"Display resolution in megapixels" example:"12.2"`
}

// Thumbnail is a small stored copy of the image.
type Thumbnail struct {
	Key         string `json:"-"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	ContentType string `json:"content_type" example:"image/jpeg"`
}
