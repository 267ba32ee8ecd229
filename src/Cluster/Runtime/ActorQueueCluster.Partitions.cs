using ActorQueue.Actors;

namespace ActorQueue.Cluster;

// The node's partitioned cluster limiters: a concurrency limit or a model-API limit per key, each key a cluster limit of its own.
public sealed partial class ActorQueueCluster
{
    /// <summary>
    /// This node's handle on the partitioned cluster limiter <paramref name="name"/>: a limit of
    /// <paramref name="maxRunning"/> permits per key, shared by every node that asks for the same name. A partition's
    /// gatekeeper (in the singleton) and agent (on each node) stop after <paramref name="idleTimeout"/> with nothing
    /// held and nobody waiting. Asking again on the same node returns the same handle.
    /// </summary>
    /// <param name="name">The limiter's cluster-wide name.</param>
    /// <param name="maxRunning">How many permits each partition has cluster-wide; at least 1.</param>
    /// <param name="maxQueued">How many may wait in each partition; <c>null</c> for no bound.</param>
    /// <param name="idleTimeout">How long an unused partition lives on; more than zero.</param>
    /// <param name="waitTimeout">How long a caller on this node waits by default; <c>null</c> for ever.</param>
    /// <param name="whenFull">What a partition's full queue does with a newcomer.</param>
    /// <returns>The limiter.</returns>
    /// <exception cref="ArgumentException">The name is empty, or this node already uses it with other bounds.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A bound or timeout is out of range.</exception>
    public ClusterPartitionedLimiter PartitionedLimiter(string name, int maxRunning, int? maxQueued, TimeSpan idleTimeout,
                                                       TimeSpan? waitTimeout = null, QueueFullMode whenFull = QueueFullMode.RejectNewcomer)
    {
        var limit = LimitOf(name, maxRunning, maxQueued, waitTimeout, whenFull);
        ActorQueue.Runtime.Timeouts.Period(idleTimeout, nameof(idleTimeout));
        while (true)
        {
            if (_partitionedModelApi.ContainsKey(name))
            {
                throw new ArgumentException($"'{name}' is a partitioned cluster model-API limiter on this node; a partitioned limiter needs a name of its own", nameof(name));
            }

            if (_partitioned.TryGetValue(name, out var existing))
            {
                if (existing.Configured != limit || existing.IdleTimeout != idleTimeout)
                {
                    throw new ArgumentException(
                        $"Partitioned cluster limiter '{name}' is already in use on this node with {existing.Configured}, idleTimeout={existing.IdleTimeout}; got {limit}, idleTimeout={idleTimeout}",
                        nameof(name));
                }

                return existing;
            }

            var count = new PartitionCount();
            var agents = StartPartitions(name, limit, idleTimeout, rates: null, count);
            var limiter = new ClusterPartitionedLimiter(name, limit, idleTimeout, agents, count,
                disposed => _partitioned.TryRemove(new KeyValuePair<string, ClusterPartitionedLimiter>(disposed.Name, disposed)));
            if (_partitioned.TryAdd(name, limiter))
            {
                return limiter;
            }

            System.Stop(agents);
        }
    }

    /// <summary>
    /// This node's handle on the partitioned cluster model-API limiter <paramref name="name"/>: the limits of
    /// <paramref name="options"/> per key, each key's held across the cluster with the promises of <see cref="ModelApiLimiter"/>,
    /// shared by every node that asks for the same name. A key's partition stops only at rest (nothing held, nobody
    /// waiting, its rates full with no debt) for <paramref name="idleTimeout"/>. Asking again on the same node returns the
    /// same handle (with the first call's <paramref name="keyFormat"/>).
    /// </summary>
    /// <typeparam name="TKey">The key type; a partition is named by the key's string.</typeparam>
    /// <param name="name">The limiter's cluster-wide name; not one this node uses for a <see cref="PartitionedLimiter"/>.</param>
    /// <param name="options">Every partition's limits; a partition's gatekeeper takes those of the first node that reaches it.</param>
    /// <param name="idleTimeout">How long a partition at rest lives on; above zero.</param>
    /// <param name="keyFormat">A key's string; <c>null</c> for the key itself (a string), invariant-culture formatting (an <see cref="IFormattable"/>), or <see cref="object.ToString"/>.</param>
    /// <returns>The limiter.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentException">The name is empty, or this node uses it with other options, another key type or for a partitioned limiter, or the options' sliding window segments do not split the period.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="idleTimeout"/> is zero, negative or infinite.</exception>
    public ClusterPartitionedModelApiLimiter<TKey> PartitionedModelApiLimiter<TKey>(string name, ModelApiLimiterOptions options, TimeSpan idleTimeout,
                                                                                 Func<TKey, string>? keyFormat = null)
        where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(options);
        RateGatekeeper.Check(options);
        var limit = LimitOf(name, options.MaxConcurrent, options.MaxQueued, options.WaitTimeout, QueueFullMode.RejectNewcomer);
        ActorQueue.Runtime.Timeouts.Period(idleTimeout, nameof(idleTimeout));
        while (true)
        {
            if (_partitioned.ContainsKey(name))
            {
                throw new ArgumentException($"'{name}' is a partitioned cluster limiter on this node; a partitioned model-API limiter needs a name of its own", nameof(name));
            }

            if (_partitionedModelApi.TryGetValue(name, out var found))
            {
                return found is ClusterPartitionedModelApiLimiter<TKey> existing && existing.Options == options && existing.IdleTimeout == idleTimeout
                    ? existing
                    : throw new ArgumentException(
                        $"Partitioned cluster model-API limiter '{name}' is already in use on this node as {found}; got {options}, idleTimeout={idleTimeout}, key type {typeof(TKey).Name}",
                        nameof(options));
            }

            var count = new PartitionCount();
            var agents = StartPartitions(name, limit, idleTimeout, options, count);
            ClusterPartitionedModelApiLimiter<TKey>? limiter = null;
            limiter = new ClusterPartitionedModelApiLimiter<TKey>(name, options, idleTimeout, keyFormat, agents, count,
                _ => _partitionedModelApi.TryRemove(new KeyValuePair<string, object>(name, limiter!)));
            if (_partitionedModelApi.TryAdd(name, limiter))
            {
                return limiter;
            }

            System.Stop(agents);
        }
    }
}
