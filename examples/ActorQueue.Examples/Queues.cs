// snippet: queues
using ActorQueue.Actors;
// end snippet

namespace ActorQueue.Examples;

public static class Queues
{
    public static async Task RunAsync(IReadOnlyList<Uri> uris)
    {
        // snippet: queues
        // A work queue: at most 100 queued items, and at most 8 worker calls at once.
        await using var queue = new WorkQueue<Uri>(maxSize: 100, timeout: TimeSpan.FromMilliseconds(250), concurrencyLimit: 8);
        await queue.StartAsync();
        await queue.ProcessAsync(async (uri, ct) => await FetchAsync(uri, ct),            // 8 workers (the limit) by default
                                 errorHandler: (ex, uri) => LogFailureAsync(uri, ex));     // a throwing handler is logged and swallowed

        foreach (var uri in uris)
        {
            if (!await queue.PutAsync(uri))          // false = the queue stayed full for the put timeout (backpressure)
            {
                await Task.Delay(100);               // back off, retry, or shed the item: your choice, never a silent drop
            }
        }

        await queue.JoinAsync();                     // every accepted item finished (processed or reported to the handler)
        await queue.StopAsync(TimeSpan.FromSeconds(5));

        // Or all of that in one call; items are put lazily as space frees up, and the same queue can run batch after batch.
        // Without an error handler, the items that finally failed are thrown together as one AggregateException once the
        // batch is done, one exception each (a durable queue's retried tries are only logged).
        await queue.BatchProcessAsync(uris, (uri, ct) => FetchAsync(uri, ct), cancellationToken: CancellationToken.None);
        // end snippet
    }

    private static Task FetchAsync(Uri uri, CancellationToken cancellationToken) => Task.CompletedTask;

    private static Task LogFailureAsync(Uri uri, Exception exception) => Task.CompletedTask;
}
