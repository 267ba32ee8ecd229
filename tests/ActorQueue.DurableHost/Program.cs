using System.Globalization;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Configuration;

// Runs a durable queue of ints in its own process, so a test can kill it at any point and start it again.
//   produce DB LOG COUNT   puts 0..COUNT-1 from four producers, logs "a N" once a put is acknowledged, then joins
//   finish  DB LOG         only starts the queue and joins: whatever was left runs
// Every worker call logs "d N", then "c N" when the queue's journaled completions (Metrics.Processed, published only
// after the journal write that holds them ended) grew to N since the last "c" line. The log is written straight through (no buffering in the process), so a SIGKILL loses
// nothing that was logged. Prints "joined" and exits 0 when the queue has nothing unfinished.
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: produce DB LOG COUNT | finish DB LOG");
    return 255;
}

var (mode, db, logPath) = (args[0], args[1], args[2]);
using var log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 1)) { AutoFlush = true };
var gate = new Lock();
var journaled = 0L;
void Log(string line)
{
    lock (gate)
    {
        log.WriteLine(line);
    }
}

var system = ActorQueueRuntime.Create("durable-host", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
var durability = new QueueDurability { StoragePath = db, SnapshotEvery = 200 };
await using var queue = new BoundedQueue<int>(256, durability, "kill-test", Timeout.InfiniteTimeSpan, system: system);
await queue.StartAsync();
await queue.StartWorkersAsync(async item =>
{
    await Task.Delay(1);
    lock (gate)
    {
        log.WriteLine($"d {item}");
        // Read after the "d" line is written: every completion counted here was told to the queue before, so its "d"
        // line is above this "c" line.
        var processed = queue.Metrics.Processed;
        if (processed > journaled)
        {
            journaled = processed;
            log.WriteLine($"c {processed}");
        }
    }
}, numWorkers: 4);

if (mode == "produce")
{
    var count = int.Parse(args[3], CultureInfo.InvariantCulture);
    var producers = Enumerable.Range(0, 4).Select(p => Task.Run(async () =>
    {
        for (var item = p; item < count; item += 4)
        {
            if (await queue.PutAsync(item))
            {
                Log($"a {item}");
            }
        }
    }));
    await Task.WhenAll(producers);
}

await queue.JoinAsync();
Log("joined");
Console.WriteLine("joined");
await queue.DisposeAsync();
await system.Terminate();
return 0;
