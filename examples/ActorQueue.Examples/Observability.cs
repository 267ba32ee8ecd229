// snippet: observability
using ActorQueue.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
// end snippet

namespace ActorQueue.Examples;

public static class Observability
{
    public static void Run()
    {
        // snippet: observability
        // Add an exporter (OTLP, console, Prometheus) to each builder. Under a Generic Host, OpenTelemetry.Extensions.Hosting's
        // services.AddOpenTelemetry().WithTracing(t => t.AddSource("ActorQueue")).WithMetrics(m => m.AddMeter("ActorQueue")) is the same.
        using var tracing = Sdk.CreateTracerProviderBuilder()
            .AddSource(ActorQueueTelemetry.Name)         // "ActorQueue": limiter wait spans, queue item spans
            .Build();
        using var metering = Sdk.CreateMeterProviderBuilder()
            .AddMeter(ActorQueueTelemetry.Name)          // "ActorQueue": limiter and queue instruments
            .Build();
        // end snippet
    }
}
