"""All of apikeys' SQL, one module per aggregate.

Lock order: a workspace's row (`WorkspaceRepository.lock`), then its keys' rows in id
order (`KeyRepository.lock`); usage rows are only ever added to, in key and day order.
"""
