"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 15:08:06.365230
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('base', sa.JSON(), nullable=False),
    sa.Column('sweep', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments'))
    )
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('worker_host', sa.String(length=255), nullable=True),
    sa.Column('device', sa.String(length=64), nullable=True),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('eta_seconds', sa.Float(), nullable=True),
    sa.Column('epochs_done', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_jobs_experiment_id_experiments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_experiment_id'), ['experiment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_method'), ['method'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_status'), ['status'], unique=False)

    op.create_table('artifacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('location', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_artifacts_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_artifacts')),
    sa.UniqueConstraint('job_id', 'name', name=op.f('uq_artifacts_job_id'))
    )
    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=False),
    sa.Column('epochs', sa.Integer(), nullable=False),
    sa.Column('lr', sa.Float(), nullable=False),
    sa.Column('train_loss', sa.Float(), nullable=True),
    sa.Column('objective', sa.Float(), nullable=True),
    sa.Column('test_loss', sa.Float(), nullable=True),
    sa.Column('test_acc', sa.Float(), nullable=True),
    sa.Column('zero_fraction', sa.Float(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_metrics_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics')),
    sa.UniqueConstraint('job_id', 'epoch', name=op.f('uq_metrics_job_id'))
    )
    op.create_table('results',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('acc_full', sa.Float(), nullable=False),
    sa.Column('acc_slim', sa.Float(), nullable=False),
    sa.Column('acc_finetuned', sa.Float(), nullable=True),
    sa.Column('channels_total', sa.Integer(), nullable=False),
    sa.Column('channels_pruned', sa.Integer(), nullable=False),
    sa.Column('pruned_fraction', sa.Float(), nullable=False),
    sa.Column('params_full', sa.BigInteger(), nullable=False),
    sa.Column('params_slim', sa.BigInteger(), nullable=False),
    sa.Column('flops_full', sa.BigInteger(), nullable=False),
    sa.Column('flops_slim', sa.BigInteger(), nullable=False),
    sa.Column('latency_full_ms', sa.Float(), nullable=False),
    sa.Column('latency_slim_ms', sa.Float(), nullable=False),
    sa.Column('layers', sa.JSON(), nullable=False),
    sa.Column('kept_forced', sa.JSON(), nullable=False),
    sa.Column('device', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_results_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_results'))
    )


def downgrade() -> None:
    op.drop_table('results')
    op.drop_table('metrics')
    op.drop_table('artifacts')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_jobs_method'))
        batch_op.drop_index(batch_op.f('ix_jobs_experiment_id'))

    op.drop_table('jobs')
    op.drop_table('experiments')
