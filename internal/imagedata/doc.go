// Package imagedata turns untrusted upload bytes into pixels, safely and once.
//
// The pipeline is: [ReadAll] bounds how many bytes are read from the client;
// [Inspect] sniffs the format from magic bytes, reads the dimensions from the
// header and the EXIF orientation, and enforces [Limits] before a single pixel
// is decoded; [Decode] then decodes the pixels (JPEG through libjpeg-turbo with
// DCT scaling when built with the turbojpeg tag, see [Backend]) and rotates
// them to display orientation.
//
// Every failure is an [*Error] that carries an HTTP status and a message that
// is safe to show to the end user; match the kind with errors.Is against the
// sentinels in errors.go, or use [StatusOf] and [MessageOf].
package imagedata
