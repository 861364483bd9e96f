package cli

import (
	"fmt"
	"image"
	"image/color"
	"time"

	"github.com/spf13/cobra"

	"github.com/glimpse-oss/glimpse/internal/analyzer/classify"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/models"
)

func newModelsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Fetch and verify ONNX Runtime and the classifier model",
		Long: `Glimpse needs two files it does not ship: ONNX Runtime's shared library
(libonnxruntime.so.1) and a classifier model with its labels. 'make setup' fetches both;
these subcommands do it by hand and check what is there.

The default model is MobileNetV2 (int8, ImageNet-1k, ONNX Model Zoo). It is accepted only
when its SHA-256 matches; a directory may hold a model.json describing another classifier.`,
	}
	var dir, ortLib, dest string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Find the runtime and model, check their digests and run one inference",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			model, err := models.Locate(dir)
			if err != nil {
				return err
			}
			lib, err := models.FindRuntime(ortLib)
			if err != nil {
				return err
			}
			if err := classify.InitRuntime(lib); err != nil {
				return err
			}
			cls, err := classify.New(classify.Config{Model: model})
			if err != nil {
				return err
			}
			defer cls.Close()
			img := image.NewRGBA(image.Rect(0, 0, 256, 256))
			for y := range 256 {
				for x := range 256 {
					img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
				}
			}
			start := time.Now()
			if _, err := cls.Classify(cmd.Context(), img); err != nil {
				return fmt.Errorf("test inference: %w", err)
			}
			fmt.Fprintf(g.stdout, "runtime   %s\nmodel     %s (%s)\nlabels    %s (%d classes)\ndecoder   %s\ninference ok (%s)\n",
				lib, model.Path, model.Spec.Name, model.LabelsPath, len(model.Labels), imagedata.Backend(), time.Since(start).Round(time.Microsecond))
			return nil
		},
	}
	verify.Flags().StringVar(&dir, "models", "", "model directory (default: search)")
	verify.Flags().StringVar(&ortLib, "ort-lib", "", "path to libonnxruntime.so.1 (default: search)")

	fetch := &cobra.Command{
		Use:   "fetch",
		Short: "Install ONNX Runtime (from npm) and the default model (from ../shared/models or upstream), verified",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lib, err := models.FetchRuntime(cmd.Context(), dest+"/onnxruntime", g.stderr)
			if err != nil {
				return err
			}
			model, err := models.Fetch(cmd.Context(), dest+"/models", g.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "runtime %s\nmodel   %s\n", lib, model.Path)
			return nil
		},
	}
	fetch.Flags().StringVar(&dest, "dest", ".deps", "directory to install into (onnxruntime/ and models/ beneath it)")
	cmd.AddCommand(verify, fetch)
	return cmd
}
