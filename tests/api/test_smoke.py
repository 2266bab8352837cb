from plansmith.v1 import plan_pb2, task_pb2
from plansmith.v1 import plan_service_pb2 as pb


async def test_create_and_get(plans):
    r = await plans.CreatePlan(
        pb.CreatePlanRequest(plan=plan_pb2.Plan(name="Launch", project_id="p1"))
    )
    assert r.plan.id.startswith("pln_")
    t = await plans.CreateTask(
        pb.CreateTaskRequest(plan_id=r.plan.id, task=task_pb2.Task(title="a"))
    )
    got = await plans.GetTask(pb.GetTaskRequest(task_id=t.task.id))
    assert got.task.title == "a"
