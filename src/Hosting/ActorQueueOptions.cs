namespace ActorQueue.Hosting;

/// <summary>
/// ActorQueue's settings under a Generic Host, bound from configuration (the <c>ActorQueue</c> section by convention)
/// or set in code: the named limiters and queues the <see cref="ActorQueueRegistry"/> hands out.
/// </summary>
/// <remarks>
/// <code>
/// "ActorQueue": {
///   "Limiters": { "llm": { "MaxRunning": 4, "MaxQueued": 100 } },
///   "Queues":   { "fetch": { "MaxSize": 100, "ConcurrencyLimit": 8 }, "summarise": { "Limiter": "llm" } }
/// }
/// </code>
/// <c>Limiters</c> and <c>Queues</c> are objects keyed by name: a JSON array under either is refused at the start (its
/// elements would be named "0", "1", …). Akka settings (dispatchers, <c>actorqueue.queue.*</c> defaults) stay HOCON: add
/// them with Akka.Hosting's <c>AddHocon</c> on the system's builder. The options are read once, when the host starts:
/// a change made afterwards, in code or in configuration reloaded while the host runs, is not applied.
/// </remarks>
public sealed class ActorQueueOptions
{
    /// <summary>The name of the actor system <c>AddActorQueue</c> starts when the application has none of its own.</summary>
    public const string DefaultSystemName = "actorqueue";

    /// <summary>The configuration section <c>AddActorQueue(IConfiguration)</c> users bind by convention.</summary>
    public const string SectionName = "ActorQueue";

    /// <summary>
    /// Whether facades created without <c>system:</c> run on the host's actor system while the host runs (default
    /// <c>true</c>). Off, they start ActorQueue's embedded system, a second one in the process, and a warning says so.
    /// </summary>
    public bool UseAsDefaultSystem { get; set; } = true;

    /// <summary>How limiter and queue names compare: as configuration keys do, whatever their case.</summary>
    internal static readonly StringComparer Names = StringComparer.OrdinalIgnoreCase;

    /// <summary>
    /// Named limiters, created when the host starts and disposed when it stops. Names match whatever their case, as
    /// configuration keys do: <c>llm</c> and <c>LLM</c> are one limiter.
    /// </summary>
    public Dictionary<string, LimiterOptions> Limiters { get; } = new(Names);

    /// <summary>
    /// Named work queues, created on first <see cref="ActorQueueRegistry.GetQueue{T}"/> and stopped when the host stops.
    /// Names match whatever their case, as limiter names do.
    /// </summary>
    public Dictionary<string, QueueOptions> Queues { get; } = new(Names);

    /// <summary>
    /// The configuration path the options were read from, which errors name keys under: <see cref="SectionName"/> unless
    /// <c>AddActorQueue(IConfiguration)</c> read another section (<c>Jobs</c>), or <c>""</c> for a configuration root.
    /// </summary>
    internal string ConfigurationPath { get; set; } = SectionName;

    /// <summary>
    /// A copy of these options, each limiter's and queue's settings copied too: what the registry checks and then makes
    /// its limiters and queues from, whatever is changed on these afterwards.
    /// </summary>
    internal ActorQueueOptions Snapshot()
    {
        var copy = new ActorQueueOptions { UseAsDefaultSystem = UseAsDefaultSystem, ConfigurationPath = ConfigurationPath };
        foreach (var (name, limiter) in Limiters)
        {
            copy.Limiters[name] = new LimiterOptions { MaxRunning = limiter.MaxRunning, MaxQueued = limiter.MaxQueued };
        }

        foreach (var (name, queue) in Queues)
        {
            copy.Queues[name] = new QueueOptions
            {
                MaxSize = queue.MaxSize, PutTimeout = queue.PutTimeout, ConcurrencyLimit = queue.ConcurrencyLimit, Limiter = queue.Limiter,
            };
        }

        return copy;
    }
}

/// <summary>One named limiter (a <c>ConcurrencyLimiter</c>).</summary>
public sealed class LimiterOptions
{
    /// <summary>How many holders at once; at least 1.</summary>
    public int MaxRunning { get; set; } = 1;

    /// <summary>How many callers may wait; <c>null</c> for no bound.</summary>
    public int? MaxQueued { get; set; }
}

/// <summary>One named work queue (a <c>WorkQueue&lt;T&gt;</c>).</summary>
public sealed class QueueOptions
{
    /// <summary>How many items the queue holds; at least 1.</summary>
    public int MaxSize { get; set; } = 100;

    /// <summary>How long a put waits for space; <c>null</c> for <c>actorqueue.queue.put-timeout</c> (100 ms).</summary>
    public TimeSpan? PutTimeout { get; set; }

    /// <summary>How many worker calls run at once, through a limiter of the queue's own; <c>null</c> for the worker count.</summary>
    public int? ConcurrencyLimit { get; set; }

    /// <summary>The name of a limiter in <see cref="ActorQueueOptions.Limiters"/> the queue shares; exclusive with <see cref="ConcurrencyLimit"/>.</summary>
    public string? Limiter { get; set; }
}
