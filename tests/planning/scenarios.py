"""Requests used across the planning tests (and the domain benchmark)."""

from __future__ import annotations

from plansmith_server.planning import AgentSpec, PlanRequest

DESIGNER = AgentSpec("designer", "Dana", ("UI design", "Figma"))
FRONTEND = AgentSpec("frontend", "Finn", ("React", "TypeScript", "frontend"))
BACKEND = AgentSpec("backend", "Bea", ("Python", "PostgreSQL", "backend"))
DBA = AgentSpec("dba", "Dimitri", ("DBA", "PostgreSQL"))
DEVOPS = AgentSpec(
    "devops", "Olga", ("DevOps engineer", "Kubernetes", "Terraform", "GitHub Actions")
)
SRE = AgentSpec("sre", "Sam", ("SRE", "Prometheus", "Grafana"))
QA = AgentSpec("qa", "Quinn", ("QA",))
MOBILE = AgentSpec("mobile", "Mo", ("React Native", "iOS", "Android"))
DATA = AgentSpec("data", "Dee", ("Data engineer", "Airflow", "dbt", "Python"))
SEC = AgentSpec("sec", "Sid", ("Security engineer",))
LEAD = AgentSpec("lead", "Lee", ("Engineering manager", "IT support"))

TEAM = (DESIGNER, FRONTEND, BACKEND, DBA, DEVOPS, SRE, QA)

WEBSITE = PlanRequest(
    name="Company website",
    description="Build a new marketing website for ACME with a blog and a contact form.",
    requirements=(
        "Responsive design that works on mobile",
        "Blog section managed through a CMS",
        "Contact form that emails the sales team",
        "Fast page loads (Lighthouse score above 90)",
    ),
    constraints=("Must use React for the frontend", "Launch within 6 weeks"),
    available_agents=(DESIGNER, FRONTEND, BACKEND),
    context={"environment": "production"},
)

PG_MIGRATION = PlanRequest(
    name="Orders database upgrade",
    description="Upgrade the orders PostgreSQL database from version 12 to 15 in production.",
    requirements=("Upgrade PostgreSQL 12 to 15", "No data loss"),
    constraints=("Complete by 2027-01-15",),
    available_agents=(DBA, DEVOPS, BACKEND),
    context={"environment": "production", "backup_required": True, "downtime_allowed": False},
)

ECOMMERCE_RELEASE = PlanRequest(
    name="Release 3.4",
    description="Zero-downtime deployment for a 12-service e-commerce platform.",
    requirements=(
        "Deploy version 3.4 of all services",
        "Rollback within 5 minutes if error rate rises",
    ),
    available_agents=(DEVOPS, SRE, BACKEND),
    context={"environment": "production"},
)

DB_OUTAGE = PlanRequest(
    name="Orders DB outage",
    description="Production database outage: the primary PostgreSQL refuses connections and "
    "checkout is down.",
    available_agents=(DBA, SRE, BACKEND),
)

STAGING_K8S = PlanRequest(
    name="Staging cluster",
    description="Set up a staging Kubernetes cluster with monitoring, logging and auto-scaling.",
    requirements=(
        "Monitoring with dashboards and alerts",
        "Centralized logging",
        "Auto-scaling of pods and nodes",
    ),
    available_agents=(DEVOPS, SRE),
    context={"environment": "staging"},
)

ONBOARDING = PlanRequest(
    name="Onboard Alex",
    description="Onboard a senior DevOps engineer joining the platform team.",
    available_agents=(LEAD, DEVOPS),
)

MONOLITH = PlanRequest(
    name="Decompose the monolith",
    description="Migrate our Django monolith to microservices.",
    requirements=(
        "Extract orders and payments into separate services",
        "No downtime during migration",
        "Each service has its own database",
    ),
    available_agents=(BACKEND, DBA, DEVOPS),
)

CICD = PlanRequest(
    name="Delivery pipelines",
    description="Build a CI/CD pipeline for our microservices running on Kubernetes.",
    requirements=(
        "Automated tests on every pull request",
        "Automatic deployment to staging",
        "One-click production deployments with approval",
    ),
    constraints=("Use GitHub Actions", "Within 3 weeks"),
    available_agents=(DEVOPS, QA),
)

CRON_TO_AIRFLOW = PlanRequest(
    name="Scheduler move",
    description="Move the 12 nightly cron jobs to Airflow in production.",
    requirements=("Alert the data team when a DAG fails", "Compare outputs before switching"),
    available_agents=(DATA, DEVOPS, SRE),
)

SCENARIOS: dict[str, PlanRequest] = {
    "website": WEBSITE,
    "pg_migration": PG_MIGRATION,
    "ecommerce_release": ECOMMERCE_RELEASE,
    "db_outage": DB_OUTAGE,
    "staging_k8s": STAGING_K8S,
    "onboarding": ONBOARDING,
    "monolith": MONOLITH,
    "cicd": CICD,
    "cron_to_airflow": CRON_TO_AIRFLOW,
    "rest_api": PlanRequest(
        name="Inventory API",
        description="Build a REST API service for inventory management.",
        requirements=(
            "CRUD endpoints for products and stock levels",
            "OAuth2 authentication",
            "p95 latency under 200 ms",
        ),
        constraints=("Use PostgreSQL", "Backend in Python"),
        available_agents=(BACKEND, DEVOPS, QA),
    ),
    "mobile_app": PlanRequest(
        name="Food ordering app",
        description="Mobile app for iOS and Android to order food from our restaurants.",
        requirements=(
            "Browse menu and order",
            "Push notifications for order status",
            "Apple Pay and Google Pay",
        ),
        available_agents=(MOBILE, BACKEND, DESIGNER, QA),
    ),
    "etl": PlanRequest(
        name="Sales ETL",
        description="ETL pipeline from Salesforce and our billing database into Snowflake for "
        "reporting.",
        requirements=(
            "Daily incremental loads",
            "Data quality checks",
            "Backfill two years of history",
        ),
        available_agents=(DATA,),
        context={"source_count": 2},
    ),
    "streaming": PlanRequest(
        name="Clickstream",
        description="Real-time streaming data pipeline for clickstream events with Kafka.",
        requirements=("Events available in the warehouse within one minute",),
        available_agents=(DATA, DEVOPS),
    ),
    "mysql_move": PlanRequest(
        name="Move to RDS",
        description="Migrate the MySQL database from our data center to AWS RDS with a short "
        "maintenance window.",
        available_agents=(DBA, DEVOPS),
        context={"environment": "production", "backup_required": "yes"},
    ),
    "rolling_release": PlanRequest(
        name="Weekly release",
        description="Deploy the weekly release of the billing service to production.",
        available_agents=(DEVOPS,),
    ),
    "api_incident": PlanRequest(
        name="Checkout errors",
        description="Incident: checkout API returning 500 errors after the last deploy.",
        available_agents=(SRE, BACKEND),
    ),
    "eks": PlanRequest(
        name="Production EKS",
        description="Provision a production Kubernetes cluster on AWS EKS with Terraform.",
        constraints=("Infrastructure must be managed with Terraform",),
        available_agents=(DEVOPS, SRE, SEC),
        context={"environment": "production"},
    ),
    "monitoring": PlanRequest(
        name="Observability",
        description="Set up monitoring and alerting for our 8 services with SLOs and PagerDuty "
        "on-call.",
        available_agents=(SRE, BACKEND),
    ),
    "security_review": PlanRequest(
        name="Payments security review",
        description="Security review of the payments API before PCI-DSS audit.",
        requirements=("Threat model", "Penetration test", "Fix all critical findings"),
        available_agents=(SEC, BACKEND),
    ),
    "junior_onboarding": PlanRequest(
        name="Onboard new frontend engineer",
        description="Onboarding plan for a new frontend engineer joining next month.",
        available_agents=(LEAD, FRONTEND),
    ),
    "web_app_with_extras": PlanRequest(
        name="Customer portal",
        description="Web application where customers see invoices and download receipts.",
        requirements=(
            "Login with SSO",
            "Invoice list with search",
            "Set up CI/CD",
            "Monitoring and alerting",
            "Export invoices to PDF",
        ),
        available_agents=TEAM,
        context={"environment": "production", "tech_stack": ["React", "Django", "Postgres"]},
    ),
    "generic_only": PlanRequest(
        name="Community garden",
        description="Plant a community vegetable garden on the school grounds.",
        requirements=("Build raised beds", "Set up a watering rota"),
        available_agents=(LEAD,),
    ),
    "no_agents": PlanRequest(
        name="Landing page",
        description="Build a landing page for the product launch.",
        context={"team_size": 2},
    ),
    "compliance_release": PlanRequest(
        name="HIPAA release",
        description="Deploy version 2.0 of the claims service to production under HIPAA.",
        available_agents=(DEVOPS, SEC, BACKEND),
    ),
    "deadline_tight": PlanRequest(
        name="Rush migration",
        description="Break up the monolith into microservices.",
        constraints=("Must be done within 2 weeks",),
        available_agents=(BACKEND, DEVOPS),
    ),
    "pipeline_and_monitoring": PlanRequest(
        name="Platform work",
        description="Set up a CI/CD pipeline and monitoring and alerting for the platform.",
        available_agents=(DEVOPS, SRE),
    ),
    "many_requirements": PlanRequest(
        name="SaaS MVP",
        description="Build the MVP of a project-management SaaS web application.",
        requirements=(
            "User sign-up and login",
            "Create projects and tasks",
            "Kanban board UI",
            "Email notifications",
            "Stripe billing",
            "Admin dashboard",
            "REST API for integrations",
            "Deploy to production",
            "Monitoring and alerting",
            "GDPR data export",
        ),
        constraints=("Must use React for the frontend", "Launch by 2027-03-01"),
        available_agents=TEAM,
        context={"environment": "production"},
    ),
}
