"""Schemathesis hooks for scripts/check-contracts (SCHEMATHESIS_HOOKS).

Schemathesis's dependency analysis reads `customer_id` in the body of
`POST /orders` as a reference to the resource of
`/customers/{customer_id}/credit`, and since no operation creates customers
(none need creating: any well-formed id is a customer) it never starts a
stateful scenario with `POST /orders`, so no order-creating sequence would be
tested at all. This drops such body inputs: a field of a request body that
names a resource no operation produces is data, not a dependency. Path inputs
are left alone.
"""

import schemathesis


@schemathesis.hook
def after_load_schema(context, schema):
    graph = schema.analysis.dependency_graph
    produced = {output.resource.name for node in graph.operations.values() for output in node.outputs}
    for node in graph.operations.values():
        node.inputs = [
            slot
            for slot in node.inputs
            if slot.resource.name in produced or getattr(slot.parameter_location, "name", "") != "BODY"
        ]
