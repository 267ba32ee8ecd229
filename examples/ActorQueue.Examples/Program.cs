// snippet: hosting
using ActorQueue.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var builder = Host.CreateApplicationBuilder(args);

// appsettings.json (or any configuration source):
// "ActorQueue": { "Limiters": { "llm": { "MaxRunning": 4 } }, "Queues": { "fetch": { "MaxSize": 100, "Limiter": "llm" } } }
builder.Services.AddActorQueue(builder.Configuration.GetSection("ActorQueue"));
builder.Services.AddHostedService<Fetcher>();

// Ctrl-C or SIGTERM: Fetcher stops, then the queues (the host's shutdown token cancels work still running after
// HostOptions.ShutdownTimeout; it goes back to its queue), the limiters, and last the actor system.
await builder.Build().RunAsync();

public sealed class Fetcher(ActorQueueRegistry registry, ILogger<Fetcher> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var queue = registry.GetQueue<Uri>("fetch");          // WorkQueue<Uri>, capped by the "llm" limiter
        await queue.StartAsync(stoppingToken);
        await queue.ProcessAsync(async (uri, ct) =>
        {
            await Task.Delay(10, ct);                         // the real work; honour ct
            log.LogInformation("fetched {Uri}", uri);
        });

        for (var i = 1; i <= 3 && !stoppingToken.IsCancellationRequested; i++)
        {
            var uri = new Uri($"https://example.org/{i}");
            if (!await queue.PutAsync(uri, stoppingToken))        // false: still full after PutTimeout (stopping: it throws)
            {
                throw new InvalidOperationException($"'fetch' refused {uri} ({queue.Status}); it was not queued");
            }
        }
    }
}
// end snippet
