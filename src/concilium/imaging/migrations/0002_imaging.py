"""imaging: the archive index (studies, series, instances) and remote DICOM nodes

Revision ID: 0002_imaging
Revises: 0001_platform
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0002_imaging"
down_revision = "0001_platform"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imaging_remote_aes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ae_title", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("allow_store", sa.Boolean(), nullable=False),
        sa.Column("allow_query", sa.Boolean(), nullable=False),
        sa.Column("allow_move_destination", sa.Boolean(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_imaging_remote_aes_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_remote_aes")),
        sa.UniqueConstraint("ae_title", name=op.f("uq_imaging_remote_aes_ae_title")),
    )
    op.create_index(op.f("ix_imaging_remote_aes_site_id"), "imaging_remote_aes", ["site_id"])

    op.create_table(
        "imaging_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("dicom_patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(length=64), nullable=True),
        sa.Column("patient_name", sa.String(length=256), nullable=False),
        sa.Column("patient_name_folded", sa.String(length=256), nullable=False),
        sa.Column("patient_birth_date", sa.Date(), nullable=True),
        sa.Column("patient_sex", sa.String(length=16), nullable=True),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("study_time", sa.Time(), nullable=True),
        sa.Column("accession_number", sa.String(length=64), nullable=True),
        sa.Column("study_id", sa.String(length=64), nullable=True),
        sa.Column("study_description", sa.String(length=256), nullable=True),
        sa.Column("referring_physician_name", sa.String(length=256), nullable=True),
        sa.Column("referring_physician_name_folded", sa.String(length=256), nullable=True),
        sa.Column("institution_name", sa.String(length=256), nullable=True),
        sa.Column("received_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_imaging_studies_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_imaging_studies_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_studies")),
        sa.UniqueConstraint(
            "study_instance_uid", name=op.f("uq_imaging_studies_study_instance_uid")
        ),
    )
    op.create_index(
        op.f("ix_imaging_studies_accession_number"), "imaging_studies", ["accession_number"]
    )
    op.create_index(
        op.f("ix_imaging_studies_dicom_patient_id"), "imaging_studies", ["dicom_patient_id"]
    )
    op.create_index(
        op.f("ix_imaging_studies_patient_name_folded"), "imaging_studies", ["patient_name_folded"]
    )
    op.create_index(op.f("ix_imaging_studies_patient_id"), "imaging_studies", ["patient_id"])
    op.create_index(op.f("ix_imaging_studies_site_id"), "imaging_studies", ["site_id"])
    op.create_index(op.f("ix_imaging_studies_study_date"), "imaging_studies", ["study_date"])

    op.create_table(
        "imaging_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(length=256), nullable=True),
        sa.Column("body_part_examined", sa.String(length=64), nullable=True),
        sa.Column("series_date", sa.Date(), nullable=True),
        sa.Column("series_time", sa.Time(), nullable=True),
        sa.Column("performed_procedure_step_start_date", sa.Date(), nullable=True),
        sa.Column("received_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["imaging_studies.id"],
            name=op.f("fk_imaging_series_study_id_imaging_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_series")),
        sa.UniqueConstraint(
            "series_instance_uid", name=op.f("uq_imaging_series_series_instance_uid")
        ),
    )
    op.create_index(op.f("ix_imaging_series_study_id"), "imaging_series", ["study_id"])

    op.create_table(
        "imaging_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("number_of_frames", sa.Integer(), nullable=True),
        sa.Column("bits_allocated", sa.Integer(), nullable=True),
        sa.Column("photometric_interpretation", sa.String(length=16), nullable=True),
        sa.Column("content_date", sa.Date(), nullable=True),
        sa.Column("content_time", sa.Time(), nullable=True),
        sa.Column("specific_character_set", sa.String(length=128), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("source_ae_title", sa.String(length=16), nullable=False),
        sa.Column("rejected_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rejection_reason", sa.String(length=16), nullable=True),
        sa.Column("received_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["imaging_series.id"],
            name=op.f("fk_imaging_instances_series_id_imaging_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_instances")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_imaging_instances_sop_instance_uid")),
    )
    op.create_index(op.f("ix_imaging_instances_address"), "imaging_instances", ["address"])
    op.create_index(op.f("ix_imaging_instances_series_id"), "imaging_instances", ["series_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes too.
    for table in ("imaging_instances", "imaging_series", "imaging_studies", "imaging_remote_aes"):
        op.drop_table(table)
