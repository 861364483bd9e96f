package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
	"github.com/glimpse-oss/glimpse/internal/autoscale/procs"
	"github.com/glimpse-oss/glimpse/internal/autoscale/sim"
	"github.com/glimpse-oss/glimpse/internal/queue"
)

// autoscaleFlags are the policy flags serve and `autoscaler run` share.
type autoscaleFlags struct {
	min, max     int
	targetWait   time.Duration
	standingWait time.Duration
	tick         time.Duration
	stableWindow time.Duration
	panicWindow  time.Duration
	startupDelay time.Duration
	serviceRate  float64
}

// register adds the flags to fl, with minWorkers the default of
// --min-workers.
func (a *autoscaleFlags) register(fl *pflag.FlagSet, minWorkers int) {
	d := autoscale.NewDefaultConfig()
	fl.IntVar(&a.min, "min-workers", minWorkers, "fewest workers the autoscaler runs (0 scales to zero when idle)")
	fl.IntVar(&a.max, "max-workers", 2*runtime.NumCPU(), "most workers the autoscaler runs")
	fl.DurationVar(&a.targetWait, "target-wait", d.Policy.TargetWait, "autoscaler goal: no job waits longer than this for a worker")
	fl.DurationVar(&a.standingWait, "standing-wait", 0, "how long jobs may wait in the queue the autoscaler keeps instead of idle workers; below --target-wait (default half of it)")
	fl.DurationVar(&a.tick, "scale-tick", d.Tick, "how often the autoscaler looks and decides")
	fl.DurationVar(&a.stableWindow, "scale-down-window", d.Policy.StableWindow, "the autoscaler shrinks only to what the arrivals over this window need (a fall in arrivals beyond noise restarts the window)")
	fl.DurationVar(&a.panicWindow, "panic-window", d.Policy.PanicWindow, "no scale-down for this long after a burst made the autoscaler scale up at once")
	fl.DurationVar(&a.startupDelay, "startup-delay", d.Policy.StartupDelay, "how long a new worker is assumed to take before its first job until it is measured")
	fl.Float64Var(&a.serviceRate, "service-rate", d.Policy.ServiceRate, "jobs per second one worker is assumed to finish until it is measured")
}

func (a *autoscaleFlags) config() autoscale.Config {
	c := autoscale.NewDefaultConfig()
	c.Tick = a.tick
	c.Policy.Min, c.Policy.Max = a.min, a.max
	c.Policy.TargetWait = a.targetWait
	c.Policy.StandingWait = a.standingWait
	c.Policy.StableWindow = a.stableWindow
	c.Policy.PanicWindow = a.panicWindow
	c.Policy.StartupDelay = a.startupDelay
	c.Policy.ServiceRate = a.serviceRate
	c.Policy.Cores = runtime.NumCPU()
	return c
}

func newAutoscalerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "autoscaler",
		Short: "Scale workers from the queue's backlog, or simulate how the policy would",
		Long: `The autoscaler sizes the worker fleet from the jobs queue. It projects the queue to when a worker
asked for now would be ready (counting the workers still starting and the measured start-up
delay and service rate) and runs the fewest workers that keep jobs within --target-wait, letting
a short queue (--standing-wait) stand rather than idle workers. It scales up at once on a burst;
down after --scale-down-window, or one tick after arrivals fall beyond noise; and never adds
workers the CPU cannot run. 'glimpse serve' runs it in process; 'autoscaler run' drives local
worker processes; 'autoscaler simulate' replays traces.`,
	}
	cmd.AddCommand(newAutoscalerRunCmd(g), newAutoscalerSimulateCmd(g))
	return cmd
}

// kubeFlags name the worker Deployment `autoscaler run --actuator kube`
// scales. They are registered in every build so that a binary built without
// Kubernetes support can say so instead of rejecting the flags.
type kubeFlags struct {
	namespace  string
	deployment string
	kubeconfig string
}

func (k *kubeFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&k.namespace, "namespace", "", "--actuator kube: namespace of the worker Deployment (default: the pod's, or the kubeconfig context's)")
	fl.StringVar(&k.deployment, "deployment", "", "--actuator kube: name of the worker Deployment to scale")
	fl.StringVar(&k.kubeconfig, "kubeconfig", "", "--actuator kube: kubeconfig file (default: in-cluster config, else $KUBECONFIG or ~/.kube/config)")
}

func newAutoscalerRunCmd(g *globals) *cobra.Command {
	var (
		af          autoscaleFlags
		kf          kubeFlags
		actuator    string
		natsURL     string
		workerCmd   string
		stopTimeout time.Duration
		metricsAddr string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Scale workers as the queue's backlog needs: local processes or a Kubernetes Deployment",
		Long: `run watches the jobs queue and sizes the worker fleet. With --actuator procs (the default) it
starts and stops local 'glimpse worker' processes (--worker-cmd); a process told to stop drains
and exits. With --actuator kube it scales a worker Deployment through its scale subresource
(--namespace, --deployment); Kubernetes support is compiled in only with -tags kube.`,
		Example: `  glimpse autoscaler run --queue nats://127.0.0.1:4222 --worker-cmd "glimpse worker --queue nats://127.0.0.1:4222" --max-workers 8
  glimpse autoscaler run --actuator kube --queue nats://nats:4222 --namespace glimpse --deployment glimpse-worker --min-workers 0 --max-workers 15`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			reg := prometheus.NewRegistry()
			var (
				act      autoscale.Actuator
				closeAct func(ctx context.Context) error
				where    string
			)
			switch actuator {
			case "procs":
				pa, err := newProcsActuator(log, g, workerCmd, stopTimeout)
				if err != nil {
					return err
				}
				reg.MustRegister(
					prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glimpse_autoscale_worker_processes",
						Help: "Worker processes alive now: running plus draining."}, func() float64 {
						running, _, _ := pa.Current(context.Background())
						return float64(running + pa.Draining())
					}),
					prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glimpse_autoscale_draining_workers",
						Help: "Worker processes told to stop that have not exited yet."}, func() float64 { return float64(pa.Draining()) }),
					prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glimpse_autoscale_killed_workers_total",
						Help: "Worker processes killed for not draining within --stop-timeout."}, func() float64 { return float64(pa.Killed()) }),
				)
				act, closeAct, where = pa, pa.Close, "local processes: "+workerCmd
			case "kube":
				ka, desc, err := newKubeActuator(kf, log.With("component", "kube"))
				if err != nil {
					return err
				}
				act, where = ka, desc
			default:
				return fmt.Errorf("--actuator %q: want procs or kube", actuator)
			}
			ctx := cmd.Context()
			nc, err := nats.Connect(natsURL)
			if err != nil {
				return fmt.Errorf("connect to %s: %w", natsURL, err)
			}
			defer nc.Close()
			q, err := queue.Open(ctx, nc, queue.Config{Logger: log.With("component", "queue")})
			if err != nil {
				return err
			}
			defer q.Close()
			cfg := af.config()
			ctl, err := autoscale.New(cfg, autoscale.Deps{
				Depth: q, Actuator: act, CPU: autoscale.NewProcStat(),
				Logger: log.With("component", "autoscale"), Registerer: reg,
			})
			if err != nil {
				return err
			}
			actors := []actor{ctl.Run}
			metrics := "off"
			if metricsAddr != "" {
				addr, run, err := serveMetrics(log, metricsAddr, reg)
				if err != nil {
					return err
				}
				actors = append(actors, run)
				metrics = "http://" + addr.String() + "/metrics"
			}
			fmt.Fprintf(g.stdout, "Glimpse %s autoscaler is running: workers [%d,%d], target wait %s\n  queue    %s\n  workers  %s\n  metrics  %s\n",
				version, cfg.Policy.Min, cfg.Policy.Max, cfg.Policy.TargetWait, natsURL, where, metrics)
			err = runActors(ctx, log, actors...)
			if closeAct == nil {
				return err // a Deployment keeps its size when the autoscaler stops
			}
			dctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			return errors.Join(err, closeAct(dctx))
		},
	}
	fl := cmd.Flags()
	af.register(fl, 1)
	kf.register(fl)
	kube := "kube (a Deployment's scale subresource)"
	if !kubeBuilt {
		kube = "kube (needs a binary built with -tags kube)"
	}
	fl.StringVar(&actuator, "actuator", "procs", "what to scale: procs (local worker processes) or "+kube)
	fl.StringVar(&natsURL, "queue", nats.DefaultURL, "NATS JetStream servers holding the jobs stream (the same as the workers' --queue)")
	fl.StringVar(&workerCmd, "worker-cmd", "", `--actuator procs: command that runs one worker (split on spaces; "glimpse" means this binary)`)
	fl.DurationVar(&stopTimeout, "stop-timeout", 2*time.Minute, "--actuator procs: how long a worker told to stop may drain before it is killed")
	fl.StringVar(&metricsAddr, "metrics-addr", "", "serve the autoscaler's /metrics and /healthz on this address (e.g. 127.0.0.1:9091)")
	return cmd
}

// newProcsActuator makes the local-process actuator from --worker-cmd.
func newProcsActuator(log *slog.Logger, g *globals, workerCmd string, stopTimeout time.Duration) (*procs.Actuator, error) {
	argv := strings.Fields(workerCmd)
	if len(argv) == 0 {
		return nil, errors.New("--worker-cmd is required with --actuator procs")
	}
	if argv[0] == "glimpse" {
		if self, err := os.Executable(); err == nil {
			argv[0] = self
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("--worker-cmd: %w", err)
	}
	return procs.New(procs.Config{Path: path, Args: argv[1:], StopTimeout: stopTimeout,
		Stdout: g.stderr, Stderr: g.stderr, Logger: log.With("component", "procs")})
}

func newAutoscalerSimulateCmd(g *globals) *cobra.Command {
	p := sim.DefaultParams()
	var (
		traces  string
		svgPath string
		stable  time.Duration
		panicW  time.Duration
		standW  time.Duration
		util    float64
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Replay arrival traces against the policy, today's scalers and an offline oracle",
		Long: `simulate replays arrival traces (step, daily, bursts, idle, flash) through a simulated queue and
worker fleet, against Glimpse's policy and models of fixed fleets, the Kubernetes HPA on CPU,
KEDA's queue scaler, AWS backlog-per-instance target tracking and Knative, and against an
oracle that knows the future. It prints p50/p99 queue wait, worker-seconds, scale events and
reversals, and checks the goal: no baseline better on both axes, within 15% of the oracle.`,
		Example: `  glimpse autoscaler simulate
  glimpse autoscaler simulate --startup 10s --stale 5s --svg autoscale.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var trs []sim.Trace
			for _, tr := range sim.Traces() {
				if traces == "all" || strings.Contains(","+traces+",", ","+tr.Name+",") {
					trs = append(trs, tr)
				}
			}
			if len(trs) == 0 {
				return fmt.Errorf("--traces %q: want all or some of step,daily,bursts,idle,flash", traces)
			}
			cfg := autoscale.NewDefaultPolicyConfig()
			cfg.StableWindow, cfg.PanicWindow, cfg.StandingWait, cfg.Utilisation = stable, panicW, standW, util
			rs, err := sim.Compare(trs, sim.Contenders(p, cfg), p)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "simulated: service %s/job per worker, start-up %s, metrics %s stale, tick %s, workers [%d,%d], target wait %s, seed %d\n\n",
				p.ServiceMean, p.StartupDelay, p.Staleness, p.Tick, p.Min, p.Max, p.TargetWait, p.Seed)
			if err := sim.WriteTable(g.stdout, rs, p); err != nil {
				return err
			}
			if svgPath != "" {
				f, err := os.Create(svgPath)
				if err != nil {
					return err
				}
				if err := sim.WriteSVG(f, rs); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "\nchart written to %s\n", svgPath)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	d := autoscale.NewDefaultPolicyConfig()
	fl.StringVar(&traces, "traces", "all", "traces to replay: all, or a comma-separated list of step,daily,bursts,idle,flash")
	fl.StringVar(&svgPath, "svg", "", "also write a worker-seconds vs p99 wait chart to this SVG file")
	fl.DurationVar(&p.Step, "step", p.Step, "simulation step")
	fl.DurationVar(&p.Tick, "tick", p.Tick, "how often every scaler observes")
	fl.DurationVar(&p.StartupDelay, "startup", p.StartupDelay, "worker start-up delay")
	fl.DurationVar(&p.Staleness, "stale", p.Staleness, "age of the metrics the scalers see")
	fl.DurationVar(&p.ServiceMean, "service", p.ServiceMean, "mean service time of one job")
	fl.DurationVar(&p.TargetWait, "target-wait", p.TargetWait, "wait goal for the policy and the oracle")
	fl.IntVar(&p.Min, "min", p.Min, "fewest workers")
	fl.IntVar(&p.Max, "max", p.Max, "most workers")
	fl.Uint64Var(&p.Seed, "seed", p.Seed, "random seed for arrivals and service times")
	fl.DurationVar(&stable, "scale-down-window", d.StableWindow, "our policy's scale-down window")
	fl.DurationVar(&panicW, "panic-window", d.PanicWindow, "our policy's hold on scale-down after a burst")
	fl.DurationVar(&standW, "standing-wait", 0, "our policy's standing queue, as a wait (default half of --target-wait)")
	fl.Float64Var(&util, "utilisation", d.Utilisation, "our policy's target utilisation")
	return cmd
}
